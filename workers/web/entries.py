"""Entries: a searchable, filtered page of a dataset; one entry with its fields, an edit form
that needs a reason, its audit history and the restore of its factory value."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from storage.errors import ValidationError
from storage.seeds.entries import (
    MUSCLE_GROUPS,
    edit_entry,
    entry_history,
    get_entry,
    list_entries,
    restore_factory,
    spec_of,
)
from workers.web.security import check_csrf

if TYPE_CHECKING:
    from workers.web.app import Console

JSON_FIELDS = ("targetMuscleGroups", "exercises")


def _filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    active = {"yes": True, "no": False}.get(query.get("active", ""))
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    return {
        "search": query.get("q", "")[:200],
        "source": query.get("source") if query.get("source") in ("factory", "user") else None,
        "muscle": query.get("muscle") if query.get("muscle") in MUSCLE_GROUPS else None,
        "active": active,
        "page": page,
    }


def changes_from(form: FormData, fields: tuple[str, ...]) -> dict[str, Any]:
    """The edit form's fields as values: muscle groups from their checkboxes, other JSON
    fields from their text (VALIDATION naming the field when it is not JSON)."""
    changes: dict[str, Any] = {}
    for name in fields:
        if name == "targetMuscleGroups":
            changes[name] = [str(v) for v in form.getlist(name)]
        elif name in JSON_FIELDS:
            try:
                changes[name] = json.loads(str(form.get(name, "null")))
            except ValueError as error:
                raise ValidationError(f"{name} is not valid JSON: {error}", field=name) from None
        else:
            text = str(form.get(name, "")).strip()
            changes[name] = text or (None if name != "name" else "")
    return changes


def routes(console: Console) -> list[Route]:
    database = console.stores.database

    async def index(request: Request) -> Response:
        spec = spec_of(request.path_params["name"])
        filters = _filters(request)
        page = list_entries(database, spec.name, **filters)
        return console.page(
            request,
            "entries.html",
            spec=spec,
            page=page,
            filters=filters,
            muscles=MUSCLE_GROUPS,
        )

    def show(request: Request, status: int = 200, **extra: Any) -> Response:
        spec = spec_of(request.path_params["name"])
        entry_id = request.path_params["entry"]
        entry = get_entry(database, spec.name, entry_id)
        history = entry_history(database, spec.name, entry_id)
        return console.page(
            request,
            "entry.html",
            status,
            spec=spec,
            entry=entry,
            history=history,
            muscles=MUSCLE_GROUPS,
            json_fields=JSON_FIELDS,
            dumps=lambda v: json.dumps(v, indent=1, ensure_ascii=False),
            **extra,
        )

    async def entry(request: Request) -> Response:
        if request.method == "GET":
            return show(request, notice=request.session.pop("notice", None))
        spec = spec_of(request.path_params["name"])
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        try:
            edit_entry(
                database,
                spec.name,
                request.path_params["entry"],
                changes_from(form, spec.fields),
                reason=str(form.get("reason", "")),
                actor=console.actor(request),
                active=form.get("active") == "on",
            )
        except ValidationError as error:
            return show(request, 422, error=error.message, form=form)
        request.session["notice"] = "saved: the entry is now a user entry, kept by bundled updates"
        return RedirectResponse(request.url.path, 303)

    async def restore(request: Request) -> Response:
        spec = spec_of(request.path_params["name"])
        check_csrf(request, (await request.form()).get("csrf"))
        entry_id = request.path_params["entry"]
        try:
            restore_factory(
                database,
                spec.name,
                entry_id,
                actor=console.actor(request),
                package=console.seeds_package,
            )
        except ValidationError as error:
            return show(request, 422, error=error.message)
        request.session["notice"] = "restored to its factory value"
        return RedirectResponse(f"/datasets/{spec.name}/entries/{entry_id}", 303)

    return [
        Route("/datasets/{name}/entries", index),
        Route("/datasets/{name}/entries/{entry}", entry, methods=["GET", "POST"]),
        Route("/datasets/{name}/entries/{entry}/restore", restore, methods=["POST"]),
    ]
