"""``python -m interp_widget.schema``: print the wire JSON Schema (read by scripts/gen-types.mjs)."""

import sys

from interp_widget.schema.jsonschema import dumps

sys.stdout.write(dumps())
