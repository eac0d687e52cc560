"""Where the user is: the app a tab shows and, in a workflow, the run. Each chat message carries its tab's.

Chip acts on, and its context describes, the app and the run of the tab a message came from; nothing
a page view writes down. So a GET changes nothing (another site's <img> cannot steer Chip), and two
tabs on two runs each drive their own. A page puts its location in hidden fields (`LocationFields`)
that the chat form and the Poke button send along; the server treats them as a claim and keeps only
a plausible one (`location_from`: an app that is loaded, a run key of sane length). A workflow then
checks the run itself: that it exists, is one of its runs, and belongs to the current profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from fasthtml.common import Div, Input
from loguru import logger

from .db import storage_problem
from .events import append_event

LOCATION_ID = "tab-location"
RUN_KEY_LIMIT = 120  # as long as a run key may be


@dataclass(frozen=True)
class Location:
    """The app a tab shows ('' for none) and the run in it ('' for none)."""

    app: str = ""
    run: str = ""


NOWHERE = Location()


def location_from(runtime, values) -> Location:
    """The location a request or message claims (its `app` and `run` fields), or NOWHERE if implausible."""
    app, run = values.get("app"), values.get("run") or ""
    if not isinstance(app, str) or app not in runtime.plugins:
        return NOWHERE
    return Location(app, run if isinstance(run, str) and len(run) <= RUN_KEY_LIMIT else "")


def page_location(name: str, request) -> Location:
    """The location of an app's page: the app, and the run its address names."""
    run = request.query_params.get("run", "")
    return Location(name, run if len(run) <= RUN_KEY_LIMIT else "")


def LocationFields(location: Location):
    """The tab's location as hidden fields; the chat form and Poke include them (`hx-include`)."""
    return Div(Input(type="hidden", name="app", value=location.app),
               Input(type="hidden", name="run", value=location.run), id=LOCATION_ID, hidden=True)


def note_app_opened(runtime, location: Location) -> None:
    """Log, when a message comes from an app other than the last one, that the user opened it (so Chip knows)."""
    app = runtime.plugins.get(location.app)
    if app is None or runtime.db.store.get("last_app") == app.name:
        return
    try:
        with runtime.db.transaction():
            runtime.db.store["last_app"] = app.name
            append_event(runtime.db, actor="user", operation="app.open", args={"app": app.name},
                         summary=f"Opened {app.display_name}", profile_id=runtime.profile_id)
    except Exception as error:  # a full disk must not stop the user from talking to Chip
        if not (reason := storage_problem(error)):
            raise
        logger.warning(f"opening {app.name} was not logged: {reason}")
