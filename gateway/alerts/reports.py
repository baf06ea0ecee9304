"""The cost and latency report (``nova report``) on a schedule, without a cron.

``NOVA_REPORT_SCHEDULE`` is ``daily``, ``weekly`` (periods start on Monday 00:00 UTC) or
``<N>s``. As soon as a period has begun, the report of the period before it (the last day,
week or N seconds, as ``nova report --since`` reads them) goes to every global webhook
destination subscribed to ``report`` and, with ``NOVA_REPORT_DIR``, into that directory as
``nova-report-<start>.txt`` and ``.html``. Each (period, destination) is one delivery in the
delivery log, so a restarted gateway does not send a period's report again. Only the gateway
whose alert dispatcher holds partition 0 of ``events`` sends it, so several gateways send one.
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Final

from rich.console import Console

from analytics.access import DirectSql
from analytics.client import ClickHouse
from analytics.report import Report, gather, render_html, render_text
from gateway.alerts.delivery import Deliverer
from nova.alerts.notices import SYSTEM, Notice, wants
from nova.entities.models import WebhookEntity
from nova.records import Delivery, now_ms
from nova.settings import Settings

log = logging.getLogger(__name__)

MONDAY_MS: Final = 4 * 86_400_000  # 1970-01-05, the first Monday after the epoch
DIR: Final = "dir"


def period_index(now_ms_: int, period_s: int) -> int:
    anchor = MONDAY_MS if period_s == 7 * 86_400 else 0
    return (now_ms_ - anchor) // (period_s * 1000)


def period_start_ms(index: int, period_s: int) -> int:
    anchor = MONDAY_MS if period_s == 7 * 86_400 else 0
    return anchor + index * period_s * 1000


def report_text(report: Report) -> str:
    out = io.StringIO()
    render_text(report, Console(file=out, width=110, color_system=None, force_terminal=False))
    return out.getvalue()


class ReportScheduler:
    def __init__(self, settings: Settings, clickhouse: ClickHouse | None,
                 deliverer: Deliverer) -> None:
        self.settings = settings
        self.clickhouse = clickhouse
        self.deliverer = deliverer
        self.period_s = settings.report_period_s

    async def tick(self, webhooks: list[WebhookEntity], now: int | None = None) -> None:
        if self.period_s is None or self.clickhouse is None:
            return
        at = now_ms() if now is None else now
        index = period_index(at, self.period_s)
        start = period_start_ms(index, self.period_s)
        alert_id = f"report/{self.settings.report_schedule}/{index}"
        notice = Notice(alert_id, "report", SYSTEM, self.settings.report_schedule,
                        "", "info", start)
        targets = [w for w in webhooks if wants(w, notice)]
        pending = [w for w in targets if not self.deliverer.deliveries.done(
            notice.delivery_id(w.id))]
        to_dir = (self.settings.report_dir is not None
                  and not self.deliverer.deliveries.done(notice.delivery_id(DIR)))
        if not pending and not to_dir:
            return
        report = await asyncio.to_thread(
            gather, DirectSql(self.clickhouse, owned=False), timedelta(seconds=self.period_s),
            datetime.fromtimestamp(start / 1000, tz=UTC))
        text = report_text(report)
        totals = report.totals
        summary = (f"{self.settings.report_schedule} report from {report.start.isoformat()}: "
                   f"${float(totals.get('cost_usd', 0.0)):,.4f} over "
                   f"{int(totals.get('calls', 0))} calls")
        full = Notice(alert_id, "report", SYSTEM, self.settings.report_schedule, summary,
                      "info", start, {
                          "period_start": report.start.isoformat(),
                          "until": report.until.isoformat(), "totals": totals, "text": text,
                          "sections": {s.key: {"title": s.title, "columns": s.columns,
                                               "rows": s.rows} for s in report.sections}})
        for webhook in pending:
            await self.deliverer.deliver(full, webhook)
        if to_dir:
            await asyncio.to_thread(self._write, report, text, start)
            record = Delivery(delivery_id=full.delivery_id(DIR), alert_id=alert_id,
                              kind="report", subject=self.settings.report_schedule,
                              webhook_id=DIR, outcome="delivered", attempts=1, ts=now_ms())
            await self.deliverer.producer.send("deliveries", record.delivery_id, record)
            self.deliverer.deliveries.record(record)

    def _write(self, report: Report, text: str, start: int) -> None:
        assert self.settings.report_dir is not None
        folder = self.settings.report_dir
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(start / 1000, tz=UTC).strftime("%Y%m%dT%H%M%S")
        (folder / f"nova-report-{stamp}.txt").write_text(text, encoding="utf-8")
        (folder / f"nova-report-{stamp}.html").write_text(render_html(report), encoding="utf-8")
        log.info("report written to %s", folder)

