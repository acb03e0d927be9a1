"""python manage.py kie_simulator --port 8765: a kie.ai-compatible server that renders real clips."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from videos.simulator import Faults, KieSimulator, RenderSettings, SimulatorConfig
from videos.simulator.faults import CALLBACK_SIGNATURES, CREDIT_FIELDS, ENDPOINTS, MESSAGE_FIELDS

# flag name -> fault name, for the faults that take a rate from 0 to 1
RATE_FAULTS = {
    "server_error_rate": "server_error",
    "maintenance_rate": "maintenance",
    "malformed_json_rate": "malformed_json",
    "slow_rate": "slow",
    "disconnect_rate": "disconnect",
    "generation_failure_rate": "generation_failure",
    "lost_callback_rate": "lost_callback",
    "duplicate_callback_rate": "duplicate_callback",
    "early_callback_rate": "early_callback",
}


class Command(BaseCommand):
    help = (
        "Run a kie.ai-compatible server (API, file upload, result files) that renders real MP4 "
        "clips and can inject the provider's failures."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        server = parser.add_argument_group("server")
        server.add_argument("--host", default="127.0.0.1")
        server.add_argument(
            "--port",
            type=int,
            default=settings.KIE_SIMULATOR_PORT,
            help="default: the KIE_SIMULATOR_PORT setting; 0 picks a free port",
        )
        server.add_argument("--public-url", help="base URL clients use, when not http://HOST:PORT")
        server.add_argument(
            "--api-key", help="Bearer key to accept (default: the KIE_API_KEY setting)"
        )
        server.add_argument(
            "--hmac-key",
            help="sign callbacks with this key (default: the KIE_WEBHOOK_HMAC_KEY setting)",
        )
        server.add_argument("--credits", type=int, default=100_000, help="starting credit balance")
        server.add_argument(
            "--allow-control",
            action="store_true",
            help="enable /_control (change faults, read statistics): for tests and demos only",
        )
        server.add_argument("--seed", type=int, help="seed for repeatable fault draws")

        timing = parser.add_argument_group("tasks and files")
        timing.add_argument(
            "--task-seconds", type=float, default=5.0, help="createTask to task end"
        )
        timing.add_argument(
            "--result-ttl", type=float, default=86_400.0, help="result URLs 404 after this"
        )
        timing.add_argument("--download-url-ttl", type=float, default=1_200.0)
        timing.add_argument("--upload-ttl", type=float, default=3 * 86_400.0)
        timing.add_argument(
            "--render-size", type=int, default=320, help="longer edge of clips, pixels"
        )
        timing.add_argument("--fps", type=int, default=24)
        timing.add_argument("--render-workers", type=int, default=2)
        timing.add_argument(
            "--instant-render",
            action="store_true",
            help="render each shape of clip once and reuse it (load tests: rendering costs nothing)",
        )

        faults = parser.add_argument_group("faults")
        for flag in RATE_FAULTS:
            faults.add_argument(
                f"--{flag.replace('_', '-')}", type=float, default=0.0, metavar="RATE"
            )
        faults.add_argument(
            "--slow-seconds", type=float, default=2.0, help="delay of a slow answer"
        )
        faults.add_argument(
            "--rate-limit", type=int, help="new tasks accepted per window; then code 429"
        )
        faults.add_argument("--rate-window", type=float, default=10.0, help="seconds")
        faults.add_argument(
            "--retry-after", type=float, help="send Retry-After on 429/455/5xx answers"
        )
        faults.add_argument(
            "--out-of-credits", action="store_true", help="createTask answers code 402"
        )
        faults.add_argument(
            "--force-code",
            action="append",
            default=[],
            metavar="ENDPOINT=CODE",
            help=f"always answer this body code; endpoints: {', '.join(ENDPOINTS)}",
        )
        faults.add_argument("--callback-signature", choices=CALLBACK_SIGNATURES, default="valid")
        faults.add_argument("--credit-field", choices=CREDIT_FIELDS, default="alternate")
        faults.add_argument("--message-field", choices=MESSAGE_FIELDS, default="msg")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("videos.simulator").setLevel(
            logging.INFO if options["verbosity"] > 1 else logging.WARNING
        )
        api_key = options["api_key"] or settings.KIE_API_KEY
        hmac_key = options["hmac_key"] or settings.KIE_WEBHOOK_HMAC_KEY
        config = SimulatorConfig(
            host=options["host"],
            port=options["port"],
            public_url=options["public_url"],
            api_key=api_key,
            hmac_key=hmac_key,
            # Its Kling routes take tokens signed with the keys the platform signs with.
            kling_access_key=settings.KLING_ACCESS_KEY or SimulatorConfig.kling_access_key,
            kling_secret_key=settings.KLING_SECRET_KEY or SimulatorConfig.kling_secret_key,
            credits=options["credits"],
            task_seconds=options["task_seconds"],
            result_ttl=options["result_ttl"],
            download_url_ttl=options["download_url_ttl"],
            upload_ttl=options["upload_ttl"],
            render=RenderSettings(long_side=options["render_size"], fps=options["fps"]),
            render_workers=options["render_workers"],
            instant_render=options["instant_render"],
            allow_control=options["allow_control"],
            seed=options["seed"],
        )
        try:
            faults = Faults().updated(self._fault_patch(options))
            simulator = KieSimulator(config, faults=faults)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {exc}") from None

        # serve_forever() returns once shutdown() is called from another thread.
        def stop(signum: int, frame: object) -> None:
            threading.Thread(target=simulator.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(
            f"kie simulator on {simulator.base_url} (kie.ai API, uploads, Kling API), callbacks "
            f"{'signed' if hmac_key else 'unsigned'}, control endpoint "
            f"{'on' if config.allow_control else 'off'}"
        )
        simulator.serve_forever()
        self.stdout.write("kie simulator stopped")

    @staticmethod
    def _fault_patch(options: dict[str, Any]) -> dict[str, Any]:
        patch: dict[str, Any] = {
            flag_fault: options[flag] for flag, flag_fault in RATE_FAULTS.items()
        }
        patch |= {
            "slow_seconds": options["slow_seconds"],
            "rate_limit": options["rate_limit"],
            "rate_window": options["rate_window"],
            "retry_after": options["retry_after"],
            "out_of_credits": options["out_of_credits"],
            "callback_signature": options["callback_signature"],
            "credit_field": options["credit_field"],
            "message_field": options["message_field"],
        }
        forced = {}
        for item in options["force_code"]:
            endpoint, _, code = item.partition("=")
            if not code.isdigit():
                raise ValueError(f"--force-code expects ENDPOINT=CODE, got {item!r}")
            forced[endpoint] = int(code)
        patch["forced_codes"] = forced
        return patch
