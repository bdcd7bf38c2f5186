"""A whole session through the Python SDK generated from the committed OpenAPI document.

Usage: python3 session.py BASE_URL SDK_DIR

Every response is parsed into its generated model (an unexpected status raises), so a field the
server sends that the document does not declare (a null where none is allowed, a value outside
an enum) fails here as it would for an AudioLab user's app.
"""

import io
import math
import struct
import sys
import time

base_url, sdk_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, sdk_dir)

from audiolab_client import AuthenticatedClient, Client  # noqa: E402
from audiolab_client.api.accounts import me, register  # noqa: E402
from audiolab_client.api.audio import (  # noqa: E402
    enable_recording,
    list_takes,
    playback_load,
    playback_status,
    recording_status,
    set_track_volume,
    start_recording,
    stop_recording,
)
from audiolab_client.api.clips import get_clip, import_clip  # noqa: E402
from audiolab_client.api.jobs import create_mixdown, download_mixdown, get_job, list_mixdowns  # noqa: E402
from audiolab_client.api.projects import (  # noqa: E402
    create_project,
    get_project,
    list_history,
    list_project_tracks,
    list_projects,
    redo,
    undo,
)
from audiolab_client.api.system import health  # noqa: E402
from audiolab_client.api.tracks import create_track  # noqa: E402
from audiolab_client.models import (  # noqa: E402
    ClipState,
    CreateProject,
    Credentials,
    CreateTrack,
    JobState,
    MixdownBody,
    RecordEnable,
    RecordingState,
    RecordStart,
    TransportState,
)
from audiolab_client.types import File  # noqa: E402

RATE = 48_000
anonymous = Client(base_url=base_url, raise_on_unexpected_status=True, timeout=30)
session = register.sync(client=anonymous, body=Credentials(username="sdk-user", password="correct horse battery"))
assert session.user.username == "sdk-user"
client = AuthenticatedClient(base_url=base_url, token=session.token, raise_on_unexpected_status=True, timeout=30)
assert me.sync(client=client).auth_enabled


def wav_tone(seconds: float, hz: float) -> bytes:
    """A 16-bit mono WAV of a sine."""
    frames = int(seconds * RATE)
    data = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / RATE))) for i in range(frames))
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", len(data)) + data


def finished(job_id):
    for _ in range(300):
        job = get_job.sync(client=client, id=job_id)
        if job.status in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


assert health.sync(client=anonymous).status == "healthy"
project = create_project.sync(client=client, body=CreateProject(name="SDK session"))
assert get_project.sync(client=client, id=project.id).name == "SDK session"
assert any(p.id == project.id for p in list_projects.sync(client=client).items)
backing = create_track.sync(client=client, body=CreateTrack(project_id=project.id, name="Backing", track_index=0))
vocal = create_track.sync(client=client, body=CreateTrack(project_id=project.id, name="Vocal", track_index=1))
assert len(list_project_tracks.sync(client=client, id=project.id).items) == 2

accepted = import_clip.sync(
    client=client,
    id=backing.id,
    body=File(payload=io.BytesIO(wav_tone(2.0, 440.0)), file_name="backing.wav", mime_type="application/octet-stream"),
    filename="backing.wav",
)
assert accepted.clip.take_id is None
assert finished(accepted.job.id).status == JobState.SUCCEEDED
assert get_clip.sync(client=client, id=accepted.clip.id).status == ClipState.READY
set_track_volume.sync(client=client, id=backing.id, volume=0.8)
loaded = playback_load.sync(client=client, id=project.id)
assert loaded.clips_loaded == 1, loaded

enable_recording.sync(client=client, id=vocal.id, body=RecordEnable(device_id="mock_0"))
started = start_recording.sync(client=client, id=vocal.id, body=RecordStart(start_time=0.0))
assert started.clip_id is None
assert playback_status.sync(client=client, id=project.id).status == TransportState.PLAYING
time.sleep(1.0)
stopped = stop_recording.sync(client=client, id=vocal.id, session_id=started.session_id)
assert stopped.clip_id is not None
for _ in range(100):
    if recording_status.sync(client=client, session_id=started.session_id).status == RecordingState.SAVED:
        break
    time.sleep(0.1)
else:
    raise AssertionError("the take was never saved")
takes = list_takes.sync(client=client, id=vocal.id)
assert [t.active for t in takes] == [True], takes

submitted = create_mixdown.sync(client=client, id=project.id, body=MixdownBody())
job = finished(submitted.job.id)
assert job.status == JobState.SUCCEEDED, job.error
assert job.result is not None and job.result.kind == "mixdown" and job.result.files, job.result
assert any(j.id == job.id for j in list_mixdowns.sync(client=client, id=project.id))

# History: the take, then its audio written (the system's); undo takes the take out, redo brings it back.
history = list_history.sync(client=client, id=project.id)
assert any(e.kind.value == "clip_ready" and e.actor is None for e in history.entries), history.entries
recorded = next(e for e in history.entries if e.kind.value == "takes_recorded")
undone = undo.sync(client=client, id=project.id)
assert undone.undoes == recorded.revision, undone
assert get_clip.sync_detailed(client=client, id=stopped.clip_id).status_code == 404
redone = redo.sync(client=client, id=project.id)
assert redone.kind.value == "redo", redone
assert get_clip.sync(client=client, id=stopped.clip_id).status == ClipState.READY
mix = download_mixdown.sync(client=client, job_id=job.id)
payload = mix.payload.read()
assert payload[:4] == b"RIFF" and len(payload) > RATE * 2 * 3, len(payload)
print(f"SDK session: registered, project, 2 tracks, import, take, mixdown of {len(payload)} bytes — every response parsed")
