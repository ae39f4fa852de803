"""``manage.py realtime_schema``: the event contract as an AsyncAPI 3.0 document and TypeScript declarations.

``realtime_schema`` prints the document as JSON; ``--format yaml``, ``--output asyncapi.yaml``
(the format follows the extension), ``--typescript realtime.d.ts`` (only that, unless
``--output`` is given too). Declarations the document cannot place are reported on stderr;
``--strict`` makes them an error (for CI). See docs/contract.md.
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from django_oda_realtime.contract import asyncapi, typescript


class Command(BaseCommand):
    help = "Write the event contract: an AsyncAPI 3.0 document and/or TypeScript declarations."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "yaml"], help="default: from --output's extension, else json")
        parser.add_argument("--output", "-o", help="write the AsyncAPI document to this file (default: stdout)")
        parser.add_argument("--typescript", dest="typescript_file", metavar="FILE", help="write the TypeScript declarations (.d.ts) here")
        parser.add_argument("--host", default="localhost:8000", help="the servers' host[:port] in the document")
        parser.add_argument("--secure", action="store_true", help="wss:// servers")
        parser.add_argument("--title", default="Realtime API")
        parser.add_argument("--api-version", default="1.0.0", help="info.version of the document")
        parser.add_argument("--strict", action="store_true", help="fail when a declaration cannot be placed")

    def handle(self, *args, format, output, typescript_file, host, secure, title, api_version, strict,
               **options):
        doc = asyncapi.document(host=host, secure=secure, title=title, version=api_version)
        problems = asyncapi.problems()
        for problem in problems:
            self.stderr.write(f"realtime_schema: {problem}")
        if problems and strict:
            raise CommandError(f"{len(problems)} declaration(s) of the event contract cannot be placed")
        if typescript_file:
            text = typescript.declarations()
            Path(typescript_file).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {typescript_file} ({len(text)} characters)")
        if output or not typescript_file:
            if format is None:
                format = "yaml" if output and Path(output).suffix in (".yaml", ".yml") else "json"
            try:
                text = asyncapi.render(doc, format)
            except RuntimeError as e:
                raise CommandError(str(e)) from e
            if output:
                Path(output).write_text(text, encoding="utf-8")
                self.stderr.write(f"Wrote {output} (AsyncAPI {doc['asyncapi']}, {len(doc['operations'])} operations)")
            else:
                self.stdout.write(text, ending="")
