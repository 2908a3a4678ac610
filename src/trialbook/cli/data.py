"""``trialbook data``: tag dataset versions, check working files, diff, list, show."""

from __future__ import annotations

import click

from trialbook.cli.main import cli, emit_json, handle_errors, json_option, open_book, uri_option


@cli.group()
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
    from trialbook import versions
    from trialbook.cli import render

    book = open_book(uri)
    version, created = versions.tag(book, name, source, tag_name)
    warnings = versions.source_warnings(source)
    out = {**versions.version_dict(book, version), "tag": tag_name, "created": created, "warnings": warnings}
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(out)
        return
    verb = "tagged" if created else "already tagged (same content, nothing to do):"
    render.console.print(f"{verb} [bold]{name}:{tag_name}[/] = version {version.digest[:12]}")
    render.dataset_counts(out)


@data.command("status")
@click.argument("ref", metavar="NAME[:TAG]")
@click.argument("source", required=False, type=click.Path())
@uri_option
@json_option
@handle_errors
def status_cmd(ref: str, source: str | None, uri: str | None, as_json: bool) -> None:
    """Compare the working files (SOURCE, else where the tag was made from) to a tag."""
    from trialbook import versions
    from trialbook.cli import render

    result = versions.status(open_book(uri), ref, source)
    if as_json:
        emit_json(result)
    else:
        render.dataset_diff(result, f"{result['dataset']}:{result['tag']}", result["source"])
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
    from trialbook import versions
    from trialbook.cli import render

    result = versions.diff(open_book(uri), ref_a, ref_b)
    if as_json:
        emit_json(result)
    else:
        render.dataset_diff(result, ref_a, ref_b)


@data.command("list")
@click.argument("name", required=False)
@uri_option
@json_option
@handle_errors
def list_cmd(name: str | None, uri: str | None, as_json: bool) -> None:
    """Dataset versions and their tags."""
    from trialbook import versions
    from trialbook.cli import render

    items = versions.list_versions(open_book(uri), name)
    if as_json:
        emit_json({"versions": items})
    else:
        render.dataset_list(items)


@data.command("show")
@click.argument("ref", metavar="NAME:TAG")
@uri_option
@json_option
@handle_errors
def show_cmd(ref: str, uri: str | None, as_json: bool) -> None:
    """One version: per-split and per-class counts."""
    from trialbook import versions
    from trialbook.cli import render

    book = open_book(uri)
    out = versions.version_dict(book, versions.resolve(book, ref))
    if as_json:
        emit_json(out)
    else:
        render.console.print(
            f"[bold]{out['name']}[/] version {out['short']}  tags: "
            f"{', '.join(out['tags']) or '-'}  from {out['source']}"
        )
        render.dataset_counts(out)
