"""Issue 16's transcode acceptance figures on the full opencv-doc videos (run by hand; several minutes of CPU).

    python tools/measure_transcode.py [WORK_DIR]     # default /tmp/streamfuse-transcode-acceptance

Makes mono-HR + colour-LR pairs of vtest.avi and Megamind.avi (colour area-downsampled 4x; mono with an AAC track
and a 5 s start offset), transcodes each twice, and measures frames, pts, audio, byte identity, a 100-frame mono
with the 795-frame colour video, a damaged mono file, and a SIGINT to the process group. Writes results.json.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import av
import cv2
from avclips import audio_duration_s, stream_times, write_clip

from streamfuse.sources.video import probe_video, read_video_rgb

D = Path("/usr/share/doc/opencv-doc/examples/data")
W = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/streamfuse-transcode-acceptance")
W.mkdir(parents=True, exist_ok=True)
R = {}


def tc(*args, timeout=900):
    t = time.monotonic()
    out = Path(str(args[args.index("-o") + 1]))
    js = Path(str(out) + ".json")
    cmd = ["streamfuse", "transcode", "-q", *map(str, args), "--json", str(js)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p, (json.loads(js.read_text()) if js.is_file() else {}), time.monotonic() - t


def packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def nframes(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


for name, fps in (("vtest.avi", 10), ("Megamind.avi", 24)):
    src = probe_video(D / name)
    frames = [f for _, f in read_video_rgb(D / name)]
    mono = write_clip(W / f"{name}-mono.mp4", frames, fps=fps, start_s=5.0, audio=True)
    h, w = frames[0].shape[:2]
    colour = write_clip(
        W / f"{name}-colour.mp4",
        [cv2.resize(f, (w // 4, h // 4), interpolation=cv2.INTER_AREA) for f in frames],
        fps=fps,
        audio=False,
    )
    runs = []
    for k in (1, 2):
        out = W / f"{name}-out{k}.mp4"
        p, s, dt = tc("--mono", mono, "--color", colour, "-o", out)
        runs.append(out)
        R[f"{name} run{k}"] = {
            "rc": p.returncode,
            "frames_in": s.get("frames_in"),
            "frames_out": s.get("frames_out"),
            "decoded": nframes(out),
            "wall_s": round(dt, 1),
        }
    a, b = runs
    ti, to = stream_times(mono), stream_times(a)
    R[name] = {
        "mono_frames": len(frames),
        "pts_identical": ti == to,
        "first_pts_s": float(to[0]),
        "audio_in_s": audio_duration_s(mono),
        "audio_out_s": audio_duration_s(a),
        "audio_packets_identical": stream_times(mono, "audio") == stream_times(a, "audio"),
        "video_streams_byte_identical": packets(a) == packets(b),
        "video_packets": len(packets(a)),
        "rate_in": str(av.open(str(mono)).streams.video[0].average_rate),
        "rate_out": str(av.open(str(a)).streams.video[0].average_rate),
    }
    print(name, R[name], R[f"{name} run1"], R[f"{name} run2"], flush=True)

# 100-frame mono with the 795-frame colour video
frames = [f for _, f in itertools.islice(read_video_rgb(D / "vtest.avi"), 100)]
mono100 = write_clip(W / "mono100.mp4", frames, fps=10, start_s=5.0, audio=True)
p, s, dt = tc("--mono", mono100, "--color", W / "vtest.avi-colour.mp4", "-o", W / "out100.mp4", timeout=600)
R["100 mono + 795 colour"] = {
    "rc": p.returncode,
    "frames_out": s.get("frames_out"),
    "decoded": nframes(W / "out100.mp4"),
    "wall_s": round(dt, 1),
}
print(R["100 mono + 795 colour"], flush=True)

# 2000 flipped bytes in the full vtest mono mp4
data = bytearray((W / "vtest.avi-mono.mp4").read_bytes())
start = len(data) // 2
for i in range(start, start + 2000):
    data[i] ^= 0xFF
(W / "corrupt.mp4").write_bytes(bytes(data))
cmd = ["streamfuse", "transcode", "-q", "--mono", str(W / "corrupt.mp4"), "--color", str(W / "vtest.avi-colour.mp4")]
cmd += ["-o", str(W / "outc.mp4")]
t0 = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
err_at, message = None, None
for line in proc.stderr:  # the time from the error line to the exit: the run must not linger after it
    if "at frame" in line and err_at is None:
        err_at, message = time.monotonic(), line.strip()
proc.wait(timeout=900)
end = time.monotonic()
R["corrupt"] = {
    "rc": proc.returncode,
    "wall_s": round(end - t0, 1),
    "error_to_exit_s": round(end - err_at, 1) if err_at else None,
    "message": message,
}
print(R["corrupt"], flush=True)

# Ctrl-C: SIGINT to the process group of a running transcode
out = W / "outint.mp4"
js = W / "outint.json"
proc = subprocess.Popen(
    [
        "streamfuse",
        "transcode",
        "-q",
        "--mono",
        str(W / "vtest.avi-mono.mp4"),
        "--color",
        str(W / "vtest.avi-colour.mp4"),
        "-o",
        str(out),
        "--json",
        str(js),
    ],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,
)
time.sleep(30)
os.killpg(proc.pid, signal.SIGINT)
so, se = proc.communicate(timeout=60)
s = json.loads(js.read_text())
R["ctrl-c"] = {
    "rc": proc.returncode,
    "frames_in": s["frames_in"],
    "frames_out": s["frames_out"],
    "decoded": nframes(out),
    "status": s["status"],
    "summary_text": so,
}
print(R["ctrl-c"], flush=True)
(W / "results.json").write_text(json.dumps(R, indent=1))
