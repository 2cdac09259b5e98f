"""Datasets: bundled against imported, the bundled update's preview and apply, factory reset
behind a confirmation, export, upload with a preview, and the backups an upload takes."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from storage.errors import ValidationError
from storage.seeds.bundle import DATASETS, load_bundle
from storage.seeds.entries import spec_of
from storage.seeds.sync import import_status, sync_seeds
from storage.seeds.transfer import (
    apply_upload,
    export_document,
    get_backup,
    list_backups,
    preview_upload,
)
from storage.seeds.transfer import read_upload as read_upload_entries
from storage.sessions.exports import EXPORT_SIZE_FACTOR
from storage.sql.schema import sql_table
from workers.web.security import check_csrf

if TYPE_CHECKING:
    from workers.web.app import Console

UPLOADS = "web-uploads"  # pending uploads between their preview and their apply


def upload_limit(console: Console) -> int:
    return EXPORT_SIZE_FACTOR * console.settings.max_payload_bytes


def overview(console: Console) -> list[dict[str, Any]]:
    database = console.stores.database
    status = import_status(database)
    out = []
    for spec in DATASETS:
        bundle, imported = load_bundle(spec, console.seeds_package), status.get(spec.name)
        table = sql_table(spec.table)
        query = sa.select(table.c.source, table.c.active, sa.func.count()).group_by(
            table.c.source, table.c.active
        )
        with database.transaction(table=spec.table) as connection:
            counts = connection.execute(query).all()
        out.append(
            {
                "name": spec.name,
                "bundled": {
                    "version": bundle.version,
                    "hash": bundle.content_hash,
                    "entries": len(bundle.entries),
                },
                "imported": imported,
                "update_available": imported is None
                or imported["contentHash"] != bundle.content_hash,
                "counts": {
                    source: sum(n for s, _, n in counts if s == source)
                    for source in ("factory", "user")
                },
                "inactive": sum(n for _, active, n in counts if not active),
                "backups": list_backups(database, spec.name),
            }
        )
    return out


def routes(console: Console) -> list[Route]:
    database = console.stores.database

    async def index(request: Request) -> Response:
        notice = request.session.pop("notice", None)
        return console.page(request, "datasets.html", datasets=overview(console), notice=notice)

    async def update(request: Request) -> Response:
        name = spec_of(request.path_params["name"]).name
        if request.method == "GET":
            plan = sync_seeds(database, apply=False, only=name, package=console.seeds_package)[name]
            return console.page(request, "update.html", name=name, plan=plan)
        check_csrf(request, (await request.form()).get("csrf"))
        report = sync_seeds(
            database,
            apply=True,
            only=name,
            actor=console.actor(request),
            package=console.seeds_package,
        )[name]
        request.session["notice"] = (
            f"{name}: bundled update applied ({len(report['added'])} added, "
            f"{len(report['changed'])} changed, {len(report['removed'])} deactivated, "
            f"{len(report['kept'])} user entries kept)"
        )
        return RedirectResponse("/datasets", 303)

    async def reset(request: Request) -> Response:
        name = spec_of(request.path_params["name"]).name
        if request.method == "GET":
            return console.page(request, "reset.html", name=name)
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        if form.get("confirm") != name:
            return console.page(
                request, "reset.html", 422, name=name, error=f"type {name} to confirm the reset"
            )
        sync_seeds(
            database,
            apply=True,
            reset=True,
            only=name,
            actor=console.actor(request),
            package=console.seeds_package,
        )
        request.session["notice"] = f"{name}: reset to the factory entries"
        return RedirectResponse("/datasets", 303)

    async def export(request: Request) -> Response:
        name = spec_of(request.path_params["name"]).name
        return _download(export_document(database, name), f"{name}.json")

    async def backup(request: Request) -> Response:
        name = spec_of(request.path_params["name"]).name
        backup_id = request.path_params["backup"]
        return _download(get_backup(database, name, backup_id), f"{name}-backup-{backup_id}.json")

    async def upload(request: Request) -> Response:
        name = spec_of(request.path_params["name"]).name
        limit = upload_limit(console)
        try:
            if int(request.headers.get("content-length") or 0) > limit + 64 * 1024:
                raise ValidationError(f"the file is larger than {limit:,} bytes", field="file")
            form = await request.form(max_files=1, max_fields=4, max_part_size=limit)
            check_csrf(request, form.get("csrf"))
            file = form.get("file")
            if file is None or isinstance(file, str) or not file.filename:
                raise ValidationError("choose a dataset JSON file to upload", field="file")
            raw = await file.read(limit + 1)
            if len(raw) > limit:
                raise ValidationError(
                    f"{file.filename} is larger than {limit:,} bytes", field="file"
                )
            entries = read_upload_entries(name, raw, file.filename)
        except ValidationError as error:
            return console.page(
                request, "error.html", 422 if error.code == "VALIDATION" else 403, error=error
            )
        token = secrets.token_urlsafe(16)
        _pending_path(console, token).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(
            _pending_path(console, token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
        )
        with os.fdopen(descriptor, "w") as handle:
            json.dump(entries, handle)
        request.session["upload"] = {"token": token, "dataset": name, "filename": file.filename}
        plan = preview_upload(database, name, entries)
        return console.page(request, "upload.html", name=name, plan=plan, filename=file.filename)

    async def apply(request: Request) -> Response:
        name = spec_of(request.path_params["name"]).name
        check_csrf(request, (await request.form()).get("csrf"))
        pending = request.session.pop("upload", None)
        if not pending or pending["dataset"] != name:
            raise ValidationError("there is no upload waiting to be applied: upload the file again")
        path = _pending_path(console, pending["token"])
        try:
            entries = json.loads(path.read_text())
        except OSError:
            raise ValidationError("the upload expired: upload the file again") from None
        result = apply_upload(
            database, name, entries, actor=console.actor(request), filename=pending["filename"]
        )
        path.unlink(missing_ok=True)
        request.session["notice"] = (
            f"{name}: {pending['filename']} imported ({result['added']} added, {result['changed']} "
            f"changed); the rows before it are kept as backup {result['backupId']}"
        )
        return RedirectResponse("/datasets", 303)

    return [
        Route("/datasets", index),
        Route("/datasets/{name}/update", update, methods=["GET", "POST"]),
        Route("/datasets/{name}/reset", reset, methods=["GET", "POST"]),
        Route("/datasets/{name}/export", export),
        Route("/datasets/{name}/backups/{backup}", backup),
        Route("/datasets/{name}/import", upload, methods=["POST"]),
        Route("/datasets/{name}/import/apply", apply, methods=["POST"]),
    ]


def _pending_path(console: Console, token: str) -> Path:
    return console.settings.home / UPLOADS / f"{token}.json"


def _download(document: dict[str, Any], filename: str) -> Response:
    return JSONResponse(
        document, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )
