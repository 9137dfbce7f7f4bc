"""``interp-widget`` command line.

    interp-widget report [--model NAME_OR_PATH] [--text TEXT ...] [-o report.html]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from interp_widget._version import __version__


def _parser() -> argparse.ArgumentParser:
    from interp_widget.report import DEFAULT_MODEL, DEFAULT_TEXT

    parser = argparse.ArgumentParser(
        prog="interp-widget",
        description="A microscope for neural networks that lives inside the notebook.",
    )
    parser.add_argument("--version", action="version", version=f"interp-widget {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    rep = sub.add_parser(
        "report",
        help="write a self-contained HTML report of every attention head",
        description=("Write ONE self-contained HTML file with the attention views (every layer and head) "
                     "and head scores of a model. It needs no kernel and makes no network request."),
    )
    rep.add_argument("--model", default=DEFAULT_MODEL,
                     help=f"zoo name, pretrained name or checkpoint directory (default: {DEFAULT_MODEL})")
    rep.add_argument("--text", action="append", dest="texts", metavar="TEXT",
                     help=f"a prompt; repeat for several (default: {DEFAULT_TEXT!r})")
    rep.add_argument("-o", "--output", default="report.html", help="the HTML file to write (default: report.html)")
    rep.add_argument("--layer", type=int, default=None, help="layer selected when the page opens (default: best induction head)")
    rep.add_argument("--head", type=int, default=None, help="head selected when the page opens")
    rep.add_argument("--window", type=int, default=64, help="tokens shown at once in the detail view (default: 64)")
    rep.add_argument("--no-model-scores", action="store_true", help="leave out head scores on random repeated tokens")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        from interp_widget.errors import InterpWidgetError
        from interp_widget.report import write_report
        from interp_widget.widgets._static import FrontEndMissingError

        try:
            out = write_report(args.output, args.model, args.texts, layer=args.layer, head=args.head,
                               window_size=args.window, model_scores=not args.no_model_scores)
        except (InterpWidgetError, FrontEndMissingError, OSError, ValueError) as exc:
            print(f"interp-widget report: error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB): open it in a browser; it works offline")
        return 0
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
