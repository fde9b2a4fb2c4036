#!/usr/bin/env python3
"""Send audit envelopes (one JSON object per line) to an OTLP/HTTP logs endpoint with the REAL
OpenTelemetry Python SDK and its OTLP/HTTP exporter (pinned in requirements.txt), one LogRecord
per envelope.

    python send_envelopes.py --endpoint http://127.0.0.1:PORT/v1/logs --file ENVELOPES.jsonl
        [--repeat N] [--token TOKEN] [--body string|kvlist] [--gzip]
        [--timeout SECONDS] [--processor batch|simple]
        [--certificate CA.pem] [--client-certificate SVID.pem --client-key SVID.key]

Each LogRecord: body = the line's text, exactly (--body string, the default) or the parsed JSON
object, which the SDK encodes as an AnyValue kvlist (--body kvlist); attribute
event.name = "zt.audit.decision" and the LogRecord event_name field set to the same; severity
INFO; resource service.name = "zt-python-sender".

Prints one JSON line on stdout:
    {"sent": 12, "ok": true, "exported": 12, "failed_exports": 0, "rejected": 0,
     "rejected_message": null, "error": null}
sent: records emitted (non-empty lines x --repeat); exported: records in exports the exporter
reported as SUCCESS; failed_exports: export() calls that did not; rejected / rejected_message:
summed from the receivers' ExportLogsServiceResponse.partial_success, which the exporter itself
ignores (any 2xx is a success to it), so "ok" does not look at them; error: the SDK's last error.
Exit 0 only if ok (every record in a successful export, flush completed); 1 if not (reason on
stderr); 2 for bad arguments or an unreadable/invalid input file (nothing sent).

For https:// endpoints, --certificate is the CA file to trust and --client-certificate /
--client-key the client's certificate and key for mTLS (e.g. an X.509-SVID); they are passed to
the SDK's OTLPLogExporter as certificate_file, client_certificate_file and client_key_file.

OTEL_* environment variables are removed before the SDK loads, so ambient settings (endpoint,
headers, compression, OTEL_SDK_DISABLED, resource attributes...) cannot change what is sent, and
the HTTP session ignores proxy variables and ~/.netrc.
"""

from __future__ import annotations

import os

for _key in [k for k in os.environ if k.startswith("OTEL_")]:
    del os.environ[_key]

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import NoReturn  # noqa: E402

EVENT_NAME = "zt.audit.decision"
SERVICE_NAME = "zt-python-sender"


def fail(code: int, message: str) -> NoReturn:
    print(f"send_envelopes: error: {message}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", required=True, help="full OTLP/HTTP logs URL, e.g. http://127.0.0.1:4318/v1/logs")
    p.add_argument("--file", required=True, help="JSONL file: one envelope per line (split on \\n only)")
    p.add_argument("--repeat", type=int, default=1, help="send the whole file N times (default 1)")
    p.add_argument("--token", help='send "authorization: Bearer TOKEN"')
    p.add_argument("--body", choices=("string", "kvlist"), default="string", help="body encoding (default string)")
    p.add_argument("--gzip", action="store_true", help="Content-Encoding: gzip (default: no compression)")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="exporter timeout per export in seconds, retries included (default 10, the SDK's)",
    )
    p.add_argument(
        "--processor",
        choices=("batch", "simple"),
        default="batch",
        help="BatchLogRecordProcessor (default) or SimpleLogRecordProcessor (one request per record)",
    )
    p.add_argument("--certificate", help="CA certificate file (PEM) the server's certificate must chain to")
    p.add_argument("--client-certificate", help="client certificate (PEM) for mTLS, e.g. an X.509-SVID")
    p.add_argument("--client-key", help="private key (PEM) of --client-certificate")
    args = p.parse_args(argv)
    if (args.client_certificate is None) != (args.client_key is None):
        p.error("--client-certificate and --client-key go together")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.timeout <= 0:
        p.error("--timeout must be > 0")
    return args


def read_lines(path: str) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(2, f"cannot read {path}: {e}")
    # Split on b"\n" only: str.splitlines() would also split inside an envelope on U+2028/U+2029,
    # \x1c-\x1e, \x85, \v, \f and \r.
    return [line for line in data.split(b"\n") if line]


def make_bodies(lines: list[bytes], mode: str, path: str) -> list[object]:
    bodies: list[object] = []
    for n, raw in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            fail(2, f"{path}: non-empty line {n} is not valid UTF-8: {e}")
        if mode == "string":
            bodies.append(text)  # sent as-is, not parsed: malformed envelopes can be sent on purpose
            continue
        try:
            obj = json.loads(text)
        except ValueError as e:
            fail(2, f"{path}: non-empty line {n} is not JSON (needed for --body kvlist): {e}")
        if not isinstance(obj, dict):
            fail(2, f"{path}: non-empty line {n} is JSON but not an object (needed for --body kvlist)")
        bodies.append(obj)
    return bodies


class _ErrorCapture(logging.Handler):
    """Keeps the last error the SDK/exporter logged (e.g. 'Failed to export logs batch code: 401')."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.last: str | None = None  # last ERROR
        self.last_warning: str | None = None  # e.g. "Transient error Service Unavailable ..., retrying"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001
            text = str(record.msg)
        if record.levelno >= logging.ERROR:
            self.last = text
        else:
            self.last_warning = text

    def describe(self) -> str | None:
        if self.last and self.last_warning and "retries" in self.last:
            return f"{self.last} (last transient error: {self.last_warning})"
        return self.last


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    bodies = make_bodies(read_lines(args.file), args.body, args.file)
    if not bodies:
        fail(2, f"{args.file} has no non-empty lines: nothing to send")

    # SDK diagnostics (export failures, retries) go to stderr; the last error is also kept.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="send_envelopes: sdk %(levelname)s %(name)s: %(message)s",
    )
    capture = _ErrorCapture()
    logging.getLogger("opentelemetry").addHandler(capture)

    import requests
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    class RecordingExporter(OTLPLogExporter):
        """OTLPLogExporter that counts what each export() returned (it runs on the batch thread)."""

        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.lock = threading.Lock()
            self.exported = 0  # records in exports that returned SUCCESS
            self.failed_exports = 0  # export() calls that returned anything else, or raised

        def export(self, batch):
            try:
                result = super().export(batch)
            except BaseException:
                with self.lock:
                    self.failed_exports += 1
                raise
            with self.lock:
                # LogRecordExportResult (newer SDKs) or LogExportResult (older ones): compare by name.
                if getattr(result, "name", None) == "SUCCESS":
                    self.exported += len(batch)
                else:
                    self.failed_exports += 1
            return result

    # The exporter treats any 2xx as success and never reads the response body, so a receiver's
    # partial_success (rejected_log_records) would go unseen: a response hook on the session reads it.
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    rejected = {"records": 0, "message": None}
    rejected_lock = threading.Lock()

    def read_partial_success(response, *_a, **_kw):
        if 200 <= response.status_code < 300 and response.content:
            try:
                msg = ExportLogsServiceResponse.FromString(response.content)
            except Exception:  # noqa: BLE001 - not protobuf (e.g. a JSON body): nothing to count
                return
            if msg.HasField("partial_success"):
                with rejected_lock:
                    rejected["records"] += msg.partial_success.rejected_log_records
                    rejected["message"] = msg.partial_success.error_message or rejected["message"]

    session = requests.Session()
    session.trust_env = False  # no proxies from the environment, no ~/.netrc credentials
    session.hooks["response"].append(read_partial_success)
    exporter = RecordingExporter(
        endpoint=args.endpoint,
        certificate_file=args.certificate,
        client_certificate_file=args.client_certificate,
        client_key_file=args.client_key,
        headers={"authorization": f"Bearer {args.token}"} if args.token else None,
        timeout=args.timeout,
        compression=Compression.Gzip if args.gzip else Compression.NoCompression,
        session=session,
    )
    total = len(bodies) * args.repeat
    if args.processor == "batch":
        # Queue sized so nothing is dropped however large the file or --repeat.
        processor = BatchLogRecordProcessor(exporter, max_queue_size=max(2048, total))
    else:
        processor = SimpleLogRecordProcessor(exporter)
    provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("zt-audit.send_envelopes")

    has_event_name = "event_name" in inspect.signature(LogRecord.__init__).parameters
    sent = 0
    for _ in range(args.repeat):
        for body in bodies:
            fields = dict(
                timestamp=time.time_ns(),
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=body,
                attributes={"event.name": EVENT_NAME},
            )
            if has_event_name:
                fields["event_name"] = EVENT_NAME
            logger.emit(LogRecord(**fields))
            sent += 1

    flush_timeout_ms = int((args.timeout + 5) * 1000 * max(1, -(-total // 512)))
    flushed = provider.force_flush(timeout_millis=flush_timeout_ms)
    provider.shutdown()

    ok = flushed and exporter.failed_exports == 0 and exporter.exported == sent
    error = None
    if not ok:
        if exporter.failed_exports:
            error = capture.describe() or f"{exporter.failed_exports} export(s) failed"
        elif not flushed:
            error = "force_flush timed out"
        else:
            error = capture.describe() or f"only {exporter.exported} of {sent} records were exported"
    print(
        json.dumps(
            {
                "sent": sent,
                "ok": ok,
                "exported": exporter.exported,
                "failed_exports": exporter.failed_exports,
                "rejected": rejected["records"],
                "rejected_message": rejected["message"],
                "error": error,
            }
        ),
        flush=True,
    )
    if not ok:
        print(
            f"send_envelopes: error: export to {args.endpoint} failed: {exporter.exported} of {sent} records "
            f"acknowledged, {exporter.failed_exports} failed export(s); last error: {error}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
