"""`python manage.py devnet --orgs 4 [--traffic]`: run a local consortium on loopback."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devnet.launcher import ADMIN_USER, Devnet, DevnetError
from devnet.traffic import SupplyChainTraffic


class Command(BaseCommand):
    help = "Create (once) and run a local consortium: one validator node per organisation on 127.0.0.1."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orgs", type=int, default=4, help="number of organisations (default 4)")
        parser.add_argument("--dir", type=Path, default=Path(settings.BASE_DIR) / "var" / "devnet")
        parser.add_argument("--base-port", type=int, default=9001, help="first node's port (default 9001)")
        parser.add_argument("--traffic", action="store_true", help="submit a steady supply-chain demo workload")
        parser.add_argument("--rate", type=float, default=10.0, help="demo transactions per second (default 10)")
        parser.add_argument("--fresh", action="store_true", help="delete an existing devnet folder first")
        parser.add_argument(
            "--prepare-only",
            action="store_true",
            help="create (once) the homes, genesis, databases and admin logins, then exit without starting nodes",
        )
        parser.add_argument(
            "--peer-host",
            default="127.0.0.1",
            help='host of each peer url in a new genesis; "{n}" is the node number, e.g. "node{n}" (default 127.0.0.1)',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        devnet = Devnet(
            options["dir"].resolve(),
            orgs=options["orgs"],
            base_port=options["base_port"],
            peer_host=options["peer_host"],
        )
        try:
            self.stdout.write(f"preparing {options['orgs']} organisations in {devnet.root} …")
            devnet.prepare(fresh=options["fresh"])
            if options["prepare_only"]:
                self._print_table(devnet, prepared_only=True)
                return
            devnet.start()
            devnet.wait_ready()
        except DevnetError as exc:
            devnet.stop()
            raise CommandError(str(exc)) from None
        self._print_table(devnet)
        traffic = self._traffic(devnet, options) if options["traffic"] else None
        try:
            self._wait(devnet)
        finally:
            if traffic:
                traffic.stop()
            self.stdout.write("stopping all nodes …")
            devnet.stop()
        self.stdout.write("devnet stopped; its data stays in " + str(devnet.root))

    def _print_table(self, devnet: Devnet, *, prepared_only: bool = False) -> None:
        self.stdout.write("")
        self.stdout.write(f"{'organisation':<26} {'url':<24} login")
        for node in devnet.nodes:
            self.stdout.write(f"{node.name:<26} {node.url:<24} {ADMIN_USER} / {node.admin_password}")
        self.stdout.write("")
        if prepared_only:
            self.stdout.write("prepared; start each node with runnode (CONSORTIUM_HOME=its home)")
        else:
            self.stdout.write("Logs are in each node's home (node.log). Press Ctrl-C to stop all nodes.")

    def _traffic(self, devnet: Devnet, options: dict[str, Any]) -> SupplyChainTraffic:
        chain_id = json.loads((devnet.root / "genesis.json").read_text())["chain_id"]
        traffic = SupplyChainTraffic(
            chain_id=chain_id,
            node_urls=[node.url for node in devnet.nodes],
            writers=[node.writer_key for node in devnet.nodes],
            rate=options["rate"],
        )
        traffic.start()
        self.stdout.write(f"submitting about {options['rate']:.0f} supply-chain transactions per second")
        return traffic

    def _wait(self, devnet: Devnet) -> None:
        stop = {"now": False}

        def request_stop(signum: int, frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        while not stop["now"]:
            if dead := devnet.dead():
                self.stderr.write(f"{dead[0].org_id} exited; see {dead[0].home / 'node.log'}")
                return
            time.sleep(0.5)
