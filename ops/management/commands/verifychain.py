"""`python manage.py verifychain`: re-verify the whole stored chain from genesis."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ledger.models import Block
from ledger.verification import ChainFault, verify_chain


class Command(BaseCommand):
    help = "Re-verify links, hashes, Merkle roots, results, certificates and signatures from genesis."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")

    def handle(self, *args, **options) -> None:
        total = Block.objects.count()
        bar = tqdm(total=total, unit="block", file=sys.stderr, disable=options["no_progress"] or None)
        try:
            verified = verify_chain(on_block=lambda height: bar.update(1))
        except ChainFault as fault:
            bar.close()
            raise CommandError(f"chain BROKEN at height {fault.height}: {fault.problem}") from None
        bar.close()
        self.stdout.write(
            f"chain intact: {verified.blocks} blocks and {verified.transactions} transactions verified from genesis"
        )
