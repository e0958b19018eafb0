#!/usr/bin/env python3
"""xtask/bench_init.py: the rater function's init time, from process start to its first request
for work behind the Lambda Runtime API (`GET /2018-06-01/runtime/invocation/next`).

Usage: python3 xtask/bench_init.py BINARY [RUNS] [--table-endpoint URL --table NAME]

Starts BINARY (the release `rater`) RUNS times (default 20) against a Runtime API stub on a
loopback port and prints the median and the slowest time. Without --table-endpoint the catalog
and accounts are bundled files (RATECARD_CATALOG / RATECARD_ACCOUNTS: no call at init); with it,
they are read from the table (a DynamoDB Local where `ratecard publish-config` stored them), as
a deployment that publishes its configuration does. Either way the SDK clients (DynamoDB, S3)
are built once, before the first poll.
"""
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    binary = args[0]
    runs = int(args[1]) if len(args) > 1 and args[1].isdigit() else 20
    endpoint = args[args.index("--table-endpoint") + 1] if "--table-endpoint" in args else None
    table = args[args.index("--table") + 1] if "--table" in args else "ratecard-bench-init"
    polled = threading.Event()

    class Stub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            polled.set()
            # Hold the poll open: the process is killed once the time is taken.
            time.sleep(5)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % server.server_address[1],
        "AWS_LAMBDA_FUNCTION_NAME": "ratecard-bench-init",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "RATECARD_TABLE": table,
        "RATECARD_EXPORTS_BUCKET": "ratecard-bench-exports",
    })
    if endpoint:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
        env.pop("RATECARD_CATALOG", None)
        env.pop("RATECARD_ACCOUNTS", None)
    else:
        env["RATECARD_CATALOG"] = os.path.join(ROOT, "examples/catalogs/cloudstack.json")
        env["RATECARD_ACCOUNTS"] = os.path.join(ROOT, "examples/accounts/cloudstack.json")
    times = []
    for _ in range(runs):
        polled.clear()
        start = time.perf_counter()
        p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not polled.wait(30):
            p.kill()
            sys.exit("no poll within 30 s: " + p.stderr.read().decode(errors="replace"))
        times.append((time.perf_counter() - start) * 1000)
        p.kill()
        p.wait()
    source = "table at " + endpoint if endpoint else "bundled files"
    print("init to first poll (%s), %d runs: median %.1f ms, slowest %.1f ms"
          % (source, runs, statistics.median(times), max(times)))


if __name__ == "__main__":
    main()
