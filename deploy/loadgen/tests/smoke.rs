//! A two-second run of the benchmark against the real stack, so the tool cannot rot. It checks
//! that every part of the report is measured, not how fast anything is. The stack requires
//! bearer tokens, as in compose, so the run also proves that the tool sends one and that both
//! services accept it through the gateway.

use std::time::Duration;

use harness::{test_auth_environment, test_token_issuer, ServiceStack};
use loadgen::Options;
use service_support::auth::{READ_SCOPE, WRITE_SCOPE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_benchmark_run_measures_every_part_of_the_report() {
    let stack = ServiceStack::start_with(&test_auth_environment()).await;
    let token = test_token_issuer()
        .issue(
            "loadgen",
            &[READ_SCOPE, WRITE_SCOPE],
            Duration::from_secs(600),
        )
        .expect("a token");
    let report_page = std::env::temp_dir().join(format!("{}.html", harness::unique_name()));
    let options = Options {
        gateway: stack.gateway.url(""),
        concurrency: 4,
        count: None,
        duration: Some(2.0),
        // Held well below what a debug build's read side drains on FerretDB, so the run ends
        // soon after its two seconds.
        rate: Some(20.0),
        rate_share: None,
        warmup: 0.5,
        lag_sample_every: 5,
        lag_probes: 2,
        baseline_secs: 0.5,
        postgres_admin_url: std::env::var("POSTGRES_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://cqrs:cqrs@127.0.0.1:5432/postgres".into()),
        amqp_url: Some(stack.amqp_url.clone()),
        mongodb_uri: stack.mongodb_uri.clone(),
        query_metrics: format!("http://127.0.0.1:{}/metrics", stack.query.metrics_port()),
        command_metrics: format!("http://127.0.0.1:{}/metrics", stack.command.metrics_port()),
        list_reads: 3,
        preload: 30,
        write_costs: 128,
        cpu_windows: true,
        read_floor: true,
        json: None,
        report: Some(report_page.clone()),
        token: Some(token),
    };

    let report = loadgen::run(options).await.expect("the benchmark runs");

    let before = report
        .before_preload
        .as_ref()
        .expect("a measurement before the preload");
    assert!(before.end_to_end.accepted > 0);
    assert_eq!(before.preloaded, 30, "every preloaded order was accepted");
    assert!(report
        .table()
        .contains("end-to-end after ÷ before preloading"));
    let e2e = &report.end_to_end;
    assert!(e2e.accepted > 0, "no order was accepted");
    assert_eq!(e2e.failed, 0);
    assert_eq!(e2e.post_latency.count, e2e.accepted);
    assert!(
        e2e.projection_lag.count > 0,
        "no projection lag was measured"
    );
    assert!(
        e2e.lag_probe_requests >= e2e.projection_lag.count,
        "each measured lag took a probe request at least: {e2e:?}"
    );
    assert!(e2e.get_by_id_latency.count > 0, "no read was measured");
    let floor = e2e
        .read_floor
        .as_ref()
        .expect("the read floor was asked for");
    assert!(
        floor.gateway.count > 0 && floor.service.count > 0,
        "a floor request was not answered as expected: {floor:?}"
    );
    assert!(report.table().contains("query-service, no store"));
    assert!(e2e.end_to_end_per_sec > 0.0);
    let lag = report
        .read_side_lag
        .as_ref()
        .expect("the read side's lag histogram was scraped");
    assert!(
        lag.events >= e2e.accepted,
        "every accepted order's event is in the histogram: {lag:?}"
    );
    assert!(lag.p99_ms.is_some(), "{lag:?}");
    // Every step of the lag was measured for every order (the batches, at least once).
    assert_eq!(lag.steps.len(), 3, "{:?}", lag.steps);
    for step in &lag.steps {
        assert!(step.observations > 0, "{step:?}");
    }
    assert!(
        lag.steps[0].observations >= e2e.accepted,
        "{:?}",
        lag.steps[0]
    );
    assert!(report.table().contains("lag step: commit → broker confirm"));
    let reads = report.list_reads.as_ref().expect("the list reads ran");
    assert_eq!(reads.orders_first_page.count, 3);
    assert_eq!(reads.customers_first_page.count, 3);
    assert_eq!(reads.customer_orders.count, 3);
    // Some 40 orders make no 21st page to time.
    assert!(reads.orders_deep_page.is_none());
    assert!(report.table().contains("idle GET /orders first page"));
    let writes: Vec<(&str, u64)> = report
        .write_costs
        .iter()
        .map(|cost| (cost.write, cost.documents))
        .collect();
    assert_eq!(
        writes,
        [
            ("insert_many of 64 orders, two indexes", 128),
            ("update_one of a summary by _id", 128),
            ("insert_many of 64 summary versions", 128),
        ]
    );
    assert!(report.table().contains("CPU ms per document: update_one"));
    let baselines = report.baselines.expect("baselines ran");
    assert!(baselines.postgres_orders_per_sec > 0.0);
    assert!(baselines.rabbitmq_confirmed_per_sec > 0.0);
    assert!(baselines.mongodb_inserts_per_sec > 0.0);
    assert!(report.ratio_to_slowest.is_some());
    assert!(
        report.memory.iter().any(|p| p.name == "command-service")
            && report.memory.iter().any(|p| p.name == "query-service"),
        "RSS of both services: {:?}",
        report.memory
    );
    // Which groups show up is not checked: at 20 orders/s for 2 s a debug service may use
    // less than one 10 ms clock tick. The grouping itself has unit tests.
    assert!(!report.cpu.is_empty(), "no CPU time was read from /proc");
    assert!(report.cores_busy > 0.0);
    assert!(report.table().contains("| CPU "));
    assert!(report.table().contains("end-to-end orders/s"));
    // Two seconds of posting are twenty windows of 100 ms, for the groups present all along.
    assert!(
        report.cpu_windows.iter().any(|group| group.windows >= 10),
        "{:?}",
        report.cpu_windows
    );
    assert!(report.table().contains("in 100 ms windows"));

    // One entry per whole second of posting, numbered: at least the two asked for, more when
    // the last answers come later (on a busy machine the posting phase once took 3.3 s).
    assert_eq!(
        e2e.timeline.len(),
        e2e.posting_secs as usize,
        "{:?}",
        e2e.timeline
    );
    assert!(e2e.timeline.len() >= 2, "{:?}", e2e.timeline);
    assert!(e2e
        .timeline
        .iter()
        .zip(1..)
        .all(|(second, at)| second.at == at));
    // The orders of a last partial second are not in it.
    let in_timeline: u64 = e2e.timeline.iter().map(|second| second.accepted).sum();
    assert!(
        in_timeline > 0 && in_timeline <= e2e.accepted,
        "{in_timeline} of {}",
        e2e.accepted
    );
    let page = std::fs::read_to_string(&report_page).expect("the HTML report was written");
    std::fs::remove_file(&report_page).expect("remove the report");
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    for caption in [
        "Accepted orders per second",
        "Latency, second by second",
        "Projection lag",
        "CPU per order",
    ] {
        assert!(page.contains(caption), "no {caption} chart");
    }
    assert!(
        page.contains("POST p99") && page.contains("GET p50"),
        "the latency legend"
    );
    assert!(
        page.contains("<td><strong>end-to-end orders/s</strong>") && !page.contains("| ---"),
        "the table as HTML"
    );
    assert!(page.contains("<dt>drain</dt>") && page.contains("<dt>lag step</dt>"));
}
