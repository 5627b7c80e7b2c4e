#!/usr/bin/python3
"""Measures alertd's webhook path on this machine: commit-to-receipt latency at a steady trickle,
and deliveries per second draining a backlog. Everything runs on loopback: the development
PostgreSQL (deploy/dev/pg.sh), deploy/dev/webhook-receiver.py and alertd run.

  /usr/bin/python3 deploy/dev/measure-webhooks.py --alertd .build/release/alertd [--trickle 200] [--backlog 5000]

Latency is the receiver's clock at receipt minus the sync run's sync_started_at, which the
writing statement sets to clock_timestamp() just before its commit: it includes the commit itself.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True, capture_output=True, text=True).stdout


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def wait_for_lines(path, count, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path) as f:
            lines = f.readlines()
        if len(lines) >= count:
            return [json.loads(l) for l in lines]
        time.sleep(0.05)
    raise SystemExit(f"only {len(lines)} of {count} webhooks arrived within {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alertd", required=True)
    parser.add_argument("--trickle", type=int, default=200, help="alerts sent one at a time, 20 per second")
    parser.add_argument("--backlog", type=int, default=5000, help="alerts queued before alertd starts")
    args = parser.parse_args()

    server = subprocess.run(["bash", f"{ROOT}/deploy/dev/pg.sh", "start"], check=True, capture_output=True, text=True).stdout.strip()
    name = "measure_" + uuid.uuid4().hex[:8]
    psql(server, f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTD_")}
    env.update(ALERTD_DATABASE_URL=url, ALERTD_TEMPLATES_DIR=f"{ROOT}/templates", ALERTD_LOG_LEVEL="warning",
               ALERTD_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ALERTD_WEBHOOK_CONCURRENCY="8", ALERTD_WEBHOOK_ALLOW="127.0.0.1", ALERTD_MESSAGE_LIMIT="off", ALERTD_BATCH_SIZE="200",
               # Every run here is a new endpoint of one integration: grouping would hold all but
               # the first a minute and fold them into messages of fifty. What this measures is
               # each alert sent as its own message, as alertd bench does.
               ALERTD_GROUP_INTERVAL="off")
    for command in (["db", "init-platform"], ["db", "migrate"]):
        subprocess.run([args.alertd] + command + ["--sql-dir", f"{ROOT}/deploy"], env=env, check=True, capture_output=True)

    log = tempfile.NamedTemporaryFile(delete=False, suffix=".jsonl").name
    receiver = subprocess.Popen(["/usr/bin/python3", f"{ROOT}/deploy/dev/webhook-receiver.py", "--log", log], stdout=subprocess.PIPE, text=True)
    port = int(receiver.stdout.readline().split()[-1])
    config = psql(url, f"""
        WITH t AS (INSERT INTO tenants (name) VALUES ('measure') RETURNING id)
        INSERT INTO integration_configs (tenant_id, integration_type, integration_name, alert_webhook_url)
        SELECT id, 'paycom', 'Paycom', 'http://127.0.0.1:{port}/hooks/measure' FROM t RETURNING id""").split()[0]
    # An endpoint per run: each failure opens an incident of its own and is sent (a repeat of one
    # endpoint would be recorded suppressed, and nothing would arrive).
    insert = f"INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) VALUES ('{config}', 'employees-' || gen_random_uuid(), clock_timestamp(), 'failed');"

    alertd = None
    try:
        # Latency at a steady trickle, alertd idle between alerts.
        alertd = subprocess.Popen([args.alertd, "run"], env=env)
        time.sleep(1.5)
        # alertd writes its grouping default for the trigger at start.
        deadline = time.time() + 30
        while psql(url, "SELECT group_interval = interval '0' FROM alertd_settings").strip() != "t":
            if time.time() > deadline:
                raise SystemExit("alertd did not write ALERTD_GROUP_INTERVAL=off to alertd_settings within 30 s")
            time.sleep(0.1)
        script = "\n".join(f"{insert}\nSELECT pg_sleep(0.05);" for _ in range(args.trickle))
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url], input=script, text=True, check=True, capture_output=True)
        received = wait_for_lines(log, args.trickle, 60)
        started = dict(line.split("|") for line in psql(url, "SELECT id, extract(epoch FROM sync_started_at) FROM integration_sync_history").split())
        latencies = [(r["time"] - float(started[json.loads(r["body"])["data"]["sync"]["id"]])) * 1000 for r in received]
        alertd.send_signal(signal.SIGTERM)
        alertd.wait(30)

        # Throughput draining a backlog queued while alertd was stopped.
        psql(url, f"INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) SELECT '{config}', 'e' || n, now(), 'failed' FROM generate_series(1, {args.backlog}) n")
        open(log, "w").close()
        alertd = subprocess.Popen([args.alertd, "run"], env=env)
        drained = wait_for_lines(log, args.backlog, 600)
        times = [r["time"] for r in drained]
        pending = psql(url, "SELECT count(*) FROM integration_alert_history WHERE delivery_status <> 'sent'").strip()
        deadline = time.time() + 30
        while pending != "0" and time.time() < deadline:
            time.sleep(0.2)
            pending = psql(url, "SELECT count(*) FROM integration_alert_history WHERE delivery_status <> 'sent'").strip()
        alertd.send_signal(signal.SIGTERM)
        alertd.wait(30)
    finally:
        if alertd is not None and alertd.poll() is None:
            alertd.kill()
        receiver.kill()
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    span = max(times) - min(times)
    print(json.dumps({
        "trickle_alerts": args.trickle,
        "webhook_latency_ms": {"p50": round(percentile(latencies, 50), 2), "p90": round(percentile(latencies, 90), 2),
                               "p99": round(percentile(latencies, 99), 2), "max": round(max(latencies), 2)},
        "backlog_alerts": args.backlog,
        "backlog_drain_s": round(span, 2),
        "webhook_deliveries_per_s": round(len(times) / span, 1) if span > 0 else None,
        "not_sent_after_drain": int(pending),
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
