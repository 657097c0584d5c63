"""Search: every word of the query, in the tickets the agent may see, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from postdesk.web.auth import Viewer, viewer
from postdesk.web.site import site_of
from postdesk.web.nav import nav
from tickets import search

router = APIRouter()
LIMIT = 50


@router.get("/search")
def search_page(request: Request, q: str = "", before: int | None = None, me: Viewer = Depends(viewer)):
    site = site_of(request)
    q = q[:500]
    with site.db.read() as session:
        hits = search.find(session, q, departments=me.departments, limit=LIMIT, before=before) if q.strip() else []
        context = nav(session, me)
    return site.render(
        request, "search.html", **context, q=q, hits=hits, more=hits[-1].message_id if len(hits) == LIMIT else None
    )
