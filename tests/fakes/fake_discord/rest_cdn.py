"""The CDN (/cdn and /media): the stored bytes of an attachment behind a signed, expiring link."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from .rest_base import RestBase


class RestCdn(RestBase):
    async def cdn(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            att = self.world.attachments[int(m["attachment_id"])]
        except (KeyError, ValueError):
            return web.Response(status=404, text="Not Found")
        path = f"/{m['folder']}/{m['owner_id']}/{m['attachment_id']}/{m['filename']}"
        q = request.query
        if path != self.world.cdn_path(att) or not self.world.check_cdn_signature(
            path, q.get("ex", ""), q.get("is", ""), q.get("hm", "")
        ):
            return web.Response(status=404, text="This content is no longer available.")
        headers = {
            "Content-Type": att.content_type or "application/octet-stream",
            "Cache-Control": "public, max-age=31536000",
            "Last-Modified": dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        return web.Response(body=att.data, headers=headers)
