"""What the web layer and the CLI share per app: settings, sessions, the Infobip submitter."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.infobip.client import InfobipClient
from app.launch.submission import Submitter


@dataclass
class AppState:
    """The resources create_app builds once."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Sessions for GET and HEAD requests, which only read (app.db.make_read_session_factory).
    read_sessions: sessionmaker[Session]
    _client: InfobipClient | None = field(default=None, repr=False)

    def client(self) -> InfobipClient:
        """Return the shared Infobip client (thread-safe), creating it on first use."""
        if self._client is None:
            s = self.settings
            assert s.infobip_base_url is not None
            self._client = InfobipClient(
                base_url=s.infobip_base_url,
                api_key=s.infobip_api_key,
                username=s.infobip_username,
                password=s.infobip_password,
                timeout=s.infobip_timeout,
                connect_timeout=s.connect_timeout,
            )
        return self._client

    def submitter(self, role: str = "web") -> Submitter:
        """Return a Submitter that sends with ivrdesk's own notify URL (none in pull mode)."""
        return Submitter(
            sessions=self.sessions,
            client=self.client(),
            notify_url=self.settings.notify_url,
            notify_content_type=self.settings.notify_content_type,
            claimant=f"{role}:{socket.gethostname()}:{os.getpid()}",
        )

    def close(self) -> None:
        """Release the client and the connection pool."""
        if self._client is not None:
            self._client.close()
        self.engine.dispose()
