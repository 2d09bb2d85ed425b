from pathlib import Path

from app.graphql.schema import export_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_the_committed_sdl_matches_the_code():
    assert SCHEMA_FILE.read_text() == export_sdl() + "\n", "run `make schema` and commit schema/schema.graphql"
