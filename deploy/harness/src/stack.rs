use crate::{fresh_mongo_database, fresh_postgres_database, fresh_vhost, Gateway, ServiceProcess};

/// Both services as their real binaries behind the real nginx gateway, on this stack's own
/// PostgreSQL database, RabbitMQ vhost and MongoDB database.
pub struct ServiceStack {
    pub gateway: Gateway,
    pub database_url: String,
    pub amqp_url: String,
    pub mongodb_uri: String,
    pub command: ServiceProcess,
    pub query: ServiceProcess,
}

impl ServiceStack {
    pub async fn start() -> Self {
        let database_url = fresh_postgres_database();
        let amqp_url = fresh_vhost().await;
        let (mongodb_uri, mongo_database) = fresh_mongo_database();
        let query = ServiceProcess::start(
            "query-service",
            &[
                ("MONGODB_URI", mongodb_uri.clone()),
                ("APP_MONGODB__DATABASE", mongo_database),
                ("AMQP_URL", amqp_url.clone()),
            ],
        )
        .await;
        let command = ServiceProcess::start(
            "command-service",
            &[
                ("DATABASE_URL", database_url.clone()),
                ("AMQP_URL", amqp_url.clone()),
            ],
        )
        .await;
        let gateway = Gateway::start(&command.address(), &query.address()).await;
        Self {
            gateway,
            database_url,
            amqp_url,
            mongodb_uri,
            command,
            query,
        }
    }
}
