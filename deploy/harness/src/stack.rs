use std::process::Output;

use crate::process::binary;
use crate::{
    fresh_mongo_database, fresh_postgres_database, fresh_vhost, service_users, Gateway,
    ServiceProcess, ServiceUsers, TestDatabase, TestMongoDatabase, TestVhost,
};

/// The projection queue of the query service's built-in defaults (`broker.queue` in its
/// `config/default.toml`, and `deploy/rabbitmq/service-users.sh`'s default).
pub const PROJECTION_QUEUE: &str = "orders.query-projection";

/// The admin token both services of a [`ServiceStack`] are configured with, made for this
/// test process.
pub fn stack_admin_token() -> &'static str {
    static TOKEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(crate::random_secret);
    &TOKEN
}

/// Both services as their real binaries behind the real nginx gateway, on this stack's own
/// PostgreSQL database, RabbitMQ vhost and MongoDB database. Each service connects to RabbitMQ
/// as its own least-privileged user, as deployed.
pub struct ServiceStack {
    pub gateway: Gateway,
    pub database_url: String,
    /// The vhost as the administrator, for tests that inspect or publish themselves.
    pub amqp_url: String,
    pub users: ServiceUsers,
    pub mongodb_uri: String,
    pub mongo_database: String,
    pub command: ServiceProcess,
    pub query: ServiceProcess,
    query_env: Vec<(&'static str, String)>,
    // Dropped after the processes above, which use them.
    _scratch: (TestDatabase, TestVhost, TestMongoDatabase),
}

impl ServiceStack {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A stack whose services both get `extra` in their environment, after the stack's own.
    pub async fn start_with(extra: &[(&'static str, String)]) -> Self {
        let database = fresh_postgres_database();
        let vhost = fresh_vhost().await;
        let users = service_users(&vhost, PROJECTION_QUEUE);
        let mongo = fresh_mongo_database();
        let (database_url, amqp_url) = (database.url.clone(), vhost.url.clone());
        let (mongodb_uri, mongo_database) = (mongo.uri.clone(), mongo.name.clone());
        let command = ServiceProcess::start(
            "command-service",
            &[
                ("DATABASE_URL", database_url.clone()),
                ("AMQP_URL", users.publisher_url.clone()),
                ("ADMIN_TOKEN", stack_admin_token().to_owned()),
            ]
            .into_iter()
            .chain(extra.iter().cloned())
            .collect::<Vec<_>>(),
        )
        .await;
        let mut query_env = vec![
            ("MONGODB_URI", mongodb_uri.clone()),
            ("APP_MONGODB__DATABASE", mongo_database.clone()),
            ("APP_MONGODB__GENERATION_REFRESH_MS", "200".to_owned()),
            ("AMQP_URL", users.consumer_url.clone()),
            ("ADMIN_TOKEN", stack_admin_token().to_owned()),
            (
                "APP_REBUILD__EVENT_LOG_URL",
                format!("http://{}", command.address()),
            ),
        ];
        query_env.extend(extra.iter().cloned());
        let query = ServiceProcess::start("query-service", &query_env).await;
        // Until its consumer is attached, the query service is still declaring its queues. A
        // test that ended sooner would delete the vhost under a declaration, and RabbitMQ then
        // restarts the new retry queue's dead-letter worker until the supervisor of all such
        // workers gives up (seen with 3.10; rabbitmq-server#16652 on 4.2): every queue with
        // at-least-once dead-lettering declared later on the node fails, every later test too.
        query.wait_until_ready("rabbitmq").await;
        let gateway = Gateway::start(&command.address(), &query.address()).await;
        Self {
            gateway,
            database_url,
            amqp_url,
            users,
            mongodb_uri,
            mongo_database,
            command,
            query,
            query_env,
            _scratch: (database, vhost, mongo),
        }
    }

    /// Another query-service, a competing consumer of the same queue on the same read store.
    pub async fn start_query_replica(&self) -> ServiceProcess {
        let replica = ServiceProcess::start("query-service", &self.query_env).await;
        replica.wait_until_ready("rabbitmq").await;
        replica
    }

    /// Runs `query-service rebuild-read-models` with `args` against this stack, as an operator
    /// would.
    pub async fn rebuild_read_models(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(binary("query-service"))
            .arg("rebuild-read-models")
            .args(args)
            .envs(self.query_env.iter().map(|(key, value)| (*key, value)))
            .env("RUST_LOG", "info,lapin=warn")
            .output()
            .await
            .expect("run query-service rebuild-read-models")
    }
}
