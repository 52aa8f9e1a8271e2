"""RunPod delivery records live in the job database; records of older versions are moved there."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from f5vi.jobs.models import JobResult
from f5vi.jobs.requests import TTSInput, complete_request
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState
from f5vi.runpod.delivery import Delivery, migrate, public_base_url
from f5vi.storage import LocalOutputStorage
from f5vi.voices.library import VoiceLibrary
from server_helpers import local_settings, write_voice


def test_old_json_records_move_into_the_job_database_once(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, cleanup_interval_seconds=0)
    settings.ensure_dirs()
    write_voice(settings.voices_dir, "v1")
    legacy = settings.data_dir / "runpod"
    legacy.mkdir()
    s3_url = "https://bucket.example/f5vi/old_1_00000000.wav?X-Amz-Signature=abc"
    (legacy / "old_1.json").write_text(
        json.dumps({"storage": "s3", "download_url": s3_url, "webhook": {"delivered": True, "attempts": 2}})
    )
    (legacy / "gone.json").write_text(json.dumps({"storage": "local"}))  # its job was purged
    (legacy / "broken.json").write_text("{not json")

    async def scenario() -> None:
        library = VoiceLibrary(settings.voices_dir, None, settings.max_reference_seconds)
        async with JobRuntime(settings, library, LocalOutputStorage(settings.output_dir)) as runtime:
            manager = runtime.manager
            store = manager.store
            job = await asyncio.to_thread(
                store.create,
                job_id="old_1",
                kind="tts",
                request=complete_request(TTSInput(text="xin chào", ref_name="v1"), "v1", settings),
                output_filename="old_1_00000000.wav",
                confirm_token="t",
            )
            await asyncio.to_thread(store.transition, job.id, JobState.RUNNING)
            result = JobResult(job.output_filename, "wav", "audio/wav", 4, 1.0, 24000, 1, "r", "t", 1, 0.1)
            await asyncio.to_thread(store.transition, job.id, JobState.SUCCEEDED, result=result)
            await asyncio.to_thread(
                store.put_delivery, job.id, {"webhook": {"delivered": False}}, replace=True
            )

            assert await migrate(manager, settings.data_dir) == 0  # the table's record is not overwritten
            assert (await manager.delivery_record("old_1")) == {"webhook": {"delivered": False}}
            assert sorted(p.name for p in legacy.iterdir()) == ["broken.json"]  # left for a person to see

            await asyncio.to_thread(store._database.connection.execute, "DELETE FROM deliveries")
            (legacy / "old_1.json").write_text(json.dumps({"storage": "s3", "download_url": s3_url}))
            assert await migrate(manager, settings.data_dir) == 1
            record = await manager.delivery_record("old_1")
            assert record == {"storage": "s3", "download_url": s3_url}
            finished = await manager.get("old_1")
            assert finished is not None
            delivery = Delivery(settings, manager, runtime.storage)
            assert delivery.download_url(finished, record) == s3_url  # the old presigned URL still serves
            assert delivery.download_url(finished, {}).startswith(public_base_url(settings) + "/output/")

    asyncio.run(scenario())
