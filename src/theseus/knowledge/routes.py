"""Knowledge routes: the read-only source viewer and the page that shows Chip's next context."""

from __future__ import annotations

from fasthtml.common import to_xml
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse

from ..location import location_from
from .mind import CONTEXT_URL, context_page
from .viewer import NotInIndex, SourcePage, line_number, resolve


def add_knowledge_routes(app, runtime) -> None:
    @app.get("/source")
    def source(path: str = "", line: str = "", end: str = ""):
        try:
            file = resolve(runtime.db, path)
            text = file.read_text(encoding="utf-8", errors="replace")
        except (NotInIndex, OSError) as error:
            raise HTTPException(404, str(error) if isinstance(error, NotInIndex)
                                else f"{path} cannot be read now.") from None
        return HTMLResponse(to_xml(SourcePage(path, text, line_number(line, "line"), line_number(end, "end"))))

    @app.get(CONTEXT_URL)
    def chip_context(request, message: str = ""):
        return HTMLResponse(to_xml(context_page(runtime, message, location_from(runtime, request.query_params))))
