"""``trialbook data``: tag dataset versions, check working files, diff, list, show."""

from __future__ import annotations

import click

from trialbook.cli.options import emit_json, handle_errors, json_option, open_book, uri_option


@click.group()
def data() -> None:
    """Dataset versions: content-addressed, tagged, immutable."""


@data.command("tag")
@click.argument("name")
@click.argument("source", type=click.Path(exists=False))
@click.option("--tag", "-t", "tag_name", required=True, help="The tag, e.g. v3.")
@uri_option
@json_option
@handle_errors
def tag_cmd(name: str, source: str, tag_name: str, uri: str | None, as_json: bool) -> None:
    """Tag the files of SOURCE (a folder or an Ultralytics data.yaml) as NAME:TAG."""
    from trialbook.cli import output
    from trialbook.services import datasets

    out = datasets.tag(open_book(uri), name, source, tag_name)
    for warning in out["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(out)
        return
    verb = "tagged" if out["created"] else "already tagged (same content, nothing to do):"
    output.console.print(f"{verb} [bold]{name}:{tag_name}[/] = version {out['short']}")
    output.dataset_counts(out)


@data.command("status")
@click.argument("ref", metavar="NAME[:TAG]")
@click.argument("source", required=False, type=click.Path())
@uri_option
@json_option
@handle_errors
def status_cmd(ref: str, source: str | None, uri: str | None, as_json: bool) -> None:
    """Compare the working files (SOURCE, else where the tag was made from) to a tag."""
    from trialbook.cli import output
    from trialbook.services import datasets

    result = datasets.status(open_book(uri), ref, source)
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(result)
    else:
        output.dataset_diff(result, f"{result['dataset']}:{result['tag']}", result["source"])
    if not result["clean"]:
        raise SystemExit(1)


@data.command("diff")
@click.argument("ref_a", metavar="NAME:A")
@click.argument("ref_b", metavar="NAME:B")
@uri_option
@json_option
@handle_errors
def diff_cmd(ref_a: str, ref_b: str, uri: str | None, as_json: bool) -> None:
    """What changed between two versions."""
    from trialbook.cli import output
    from trialbook.services import datasets

    result = datasets.diff(open_book(uri), ref_a, ref_b)
    if as_json:
        emit_json(result)
    else:
        output.dataset_diff(result, ref_a, ref_b)


@data.command("list")
@click.argument("name", required=False)
@uri_option
@json_option
@handle_errors
def list_cmd(name: str | None, uri: str | None, as_json: bool) -> None:
    """Dataset versions and their tags."""
    from trialbook.cli import output
    from trialbook.services import datasets

    listed = datasets.list_versions(open_book(uri), name)
    if as_json:
        emit_json(listed)
    else:
        output.dataset_list(listed["versions"])


@data.command("show")
@click.argument("ref", metavar="NAME:TAG")
@uri_option
@json_option
@handle_errors
def show_cmd(ref: str, uri: str | None, as_json: bool) -> None:
    """One version: per-split and per-class counts."""
    from trialbook.cli import output
    from trialbook.services import datasets

    out = datasets.show(open_book(uri), ref)
    if as_json:
        emit_json(out)
    else:
        output.console.print(
            f"[bold]{out['name']}[/] version {out['short']}  tags: "
            f"{', '.join(out['tags']) or '-'}  from {out['source']}"
        )
        output.dataset_counts(out)


COMMANDS = [data]
