"""The app shell's components: nav bar, profile and apps menus, chat pane, poke bar, messages.

Components are PascalCase functions returning FT. Ids of swap targets come
from the constants and helpers here, so routes, out-of-band swaps and tests agree.
"""

from __future__ import annotations

import json

from fasthtml.common import (A, Button, Details, Div, Footer, Form, Input, Li, Link,
                             Main, Meta, Nav, Option, Script, Select, Small, Strong,
                             Summary, Title, Ul)

from .location import LOCATION_ID, NOWHERE, Location, LocationFields

PROFILE_MENU_ID = "profile-menu"
APPS_MENU_ID = "apps-menu"
MAIN_ID = "main"
WORKSPACE_ID = "workspace"
TOAST_ID = "toast"
SYNC_ID = "sync"
TAB_HEADER = "X-Theseus-Tab"
EVENT_HEADER = "X-Theseus-Event"  # an operation's event id on its HTTP response (SSE messages carry it as id:)

HTMX_CONFIG = {
    # Swap error responses too: they carry the out-of-band message that says what went wrong.
    "responseHandling": [{"code": "204", "swap": False}, {"code": "...", "swap": True}],
    "defaultSwapStyle": "outerHTML",
    "allowEval": False,
    "includeIndicatorStyles": False,
}


def op_url(name: str) -> str:
    """The URL of an operation's HTTP route."""
    return f"/ops/{name}"


def app_url(name: str) -> str:
    """The URL of an app's page."""
    return f"/apps/{name}"


def Headers():
    """<head> contents: our own and the pinned third-party assets, all served locally."""
    return (Meta(charset="utf-8"), Meta(name="viewport", content="width=device-width, initial-scale=1"),
            Meta(name="htmx-config", content=json.dumps(HTMX_CONFIG)),
            Link(rel="stylesheet", href="/vendor/pico.min.css"),
            Link(rel="stylesheet", href="/static/theseus.css"),
            Link(rel="icon", href="/static/favicon.svg", type="image/svg+xml"),
            Script(src="/vendor/htmx.min.js"), Script(src="/vendor/sse.js"), Script(src="/vendor/ws.js"),
            Script(src="/vendor/Sortable.min.js"), Script(src="/static/theseus.js", defer=True))


def ProfileMenu(profiles: list[dict], current: int, **attrs):
    """The profile switcher in the nav bar."""
    return Form(Select(*[Option(p["name"], value=p["id"], selected=p["id"] == current) for p in profiles],
                       name="id", aria_label="Profile", hx_post=op_url("profiles.switch"),
                       hx_trigger="change", hx_swap="none"),
                id=PROFILE_MENU_ID, cls="profile-menu", **attrs)


def AppsMenu(apps: list, broken: list, current: str | None):
    """Links to every app; broken plugins are listed with their error."""
    links = [Li(A(a.display_name or a.name, href=app_url(a.name),
                  aria_current="page" if a.name == current else None)) for a in apps]
    broken_items = [Li(BrokenPluginItem(b)) for b in broken]
    return Ul(*links, *broken_items, id=APPS_MENU_ID, cls="apps-menu")


def BrokenPluginItem(plugin):
    return Details(Summary(f"⚠ {plugin.name} (broken)"), Small(plugin.error),
                   cls="broken-plugin", data_plugin=plugin.name)


def SearchBox():
    return Form(Input(type="search", name="q", placeholder="Search apps, docs, code…", aria_label="Search",
                      hx_get="/search", hx_trigger="input changed delay:150ms, search",
                      hx_target="#search-results", hx_swap="innerHTML", autocomplete="off"),
                Div(id="search-results", cls="search-results"),
                cls="search", role="search", onsubmit="return false")


def NavBar(profile_menu, apps, broken, current_app):
    return Nav(Ul(Li(A(Strong("Theseus"), href="/", cls="brand")), Li(profile_menu)),
               AppsMenu(apps, broken, current_app),
               Ul(Li(SearchBox())), cls="topbar")


def PokeBar():
    return Footer(Button("Poke", title="Nudge Chip: what should I do next?", hx_post="/poke",
                         hx_include=f"#{LOCATION_ID}", hx_swap="none", cls="outline poke"),
                  Small(A("server.log", href="/log", target="_blank"), " ",
                        Button("Copy log", type="button", cls="outline secondary copy-log",
                               title="Copy server.log, to paste it into a prompt")), cls="pokebar")


def Toast(message: str, kind: str = "error"):
    """A short message that replaces the current one (out-of-band)."""
    return Div(message, id=TOAST_ID, cls=f"toast {kind}", role="alert" if kind == "error" else "status",
               hx_swap_oob="true")


def Shell(*, title: str, tab: str, nav, main, main_url: str | None, chat, banner="", location: Location = NOWHERE,
          chat_page: bool = False):
    """The whole page: nav, dev-loop banner, main area (reloaded from `main_url` when the profile changes), chat
    pane, poke bar, the live-sync connection, and where the tab is (`location`, sent with its chat messages).
    `chat_page`: the chat opens full-size (theseus.js toggles the class `chat-full` on the workspace)."""
    reload = {"hx_get": main_url, "hx_trigger": "sse:profile, profile from:body", "hx_swap": "innerHTML"} \
        if main_url else {}
    return (Title(f"{title} · Theseus"),
            Div(nav, banner, LocationFields(location),
                Div(Main(main, id=MAIN_ID, **reload), chat, id=WORKSPACE_ID,
                    cls="workspace chat-full" if chat_page else "workspace",
                    data_chat_page="true" if chat_page else None),
                PokeBar(), Div(id=TOAST_ID, cls="toast", role="status"),
                Div(id=SYNC_ID, sse_swap="sync", hx_swap="none", hidden=True),
                hx_ext="sse", sse_connect=f"/sync?tab={tab}", cls="shell",
                hx_headers=json.dumps({TAB_HEADER: tab}), data_tab=tab))
