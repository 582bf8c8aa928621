"""The ``streamfuse`` command line: thin wrappers over library calls, one ``_add_*`` + ``_cmd_*`` pair per command.

Every command that fails on user input prints one line naming the problem and the fix, and exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

log = logging.getLogger("streamfuse")


class UserError(Exception):
    """An error caused by user input: printed as one line, exit status 2."""


def _parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' into (W, H) (streamfuse.size.parse_size) for argparse."""
    from streamfuse.size import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _engine_options(pairs: list[str]) -> dict:
    """Parse repeated ``--opt key=value`` into engine options (values parsed as YAML scalars)."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--opt expects key=value, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


# --- colorize -------------------------------------------------------------------------------------------


def _add_colorize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("colorize", help="colorize one mono image with one colour reference image")
    p.add_argument("--engine", default="guided", help="engine registry name (default: guided)")
    p.add_argument("--mono", required=True, help="mono image (any format OpenCV reads; colour is converted to luma)")
    p.add_argument(
        "--ref",
        help="colour reference image (may be smaller than the mono image), or a folder of them: the most "
        "similar one is retrieved (Pik-Fix's similarity features); omit it for automatic mode (scsnet)",
    )
    p.add_argument("--scale", type=float, help="output size / mono size, for engines that enlarge (scsnet)")
    p.add_argument("-o", "--output", required=True, help="output image path")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="engine option (repeatable)")
    p.set_defaults(func=_cmd_colorize)


def _cmd_colorize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streamfuse.engines import load_engine
    from streamfuse.imageio import read_gray, read_rgb, write_rgb

    options = _engine_options(args.opt)
    if args.scale is not None:
        options["scale"] = args.scale
    engine = load_engine(args.engine, **options)
    mono = read_gray(args.mono)
    if args.ref is None:
        if not getattr(engine, "automatic", False):
            raise UserError(f"engine {args.engine} needs --ref (only scsnet colorizes without a reference)")
        ref = None
    elif Path(args.ref).is_dir():
        from streamfuse.engines.retrieval import retrieve

        name, ref = retrieve(mono, args.ref)
        print(f"reference: {name} (retrieved from {args.ref})")
    else:
        ref = read_rgb(args.ref)
    out = engine.colorize(mono, None if ref is None else engine.prepare_reference(ref))
    write_rgb(args.output, out)
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, engine {args.engine})")
    return 0


# --- calibrate ------------------------------------------------------------------------------------------


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="stereo-calibrate a mono + colour rig from chessboard image pairs")
    p.add_argument("--left", required=True, help="glob of the left camera's board images (quote it), e.g. 'left*.jpg'")
    p.add_argument("--right", required=True, help="glob of the right camera's board images, paired in sorted order")
    p.add_argument("--board", default="9x6", help="inner corners per row x per column (default: 9x6)")
    p.add_argument("--square", default="25mm", help="square size: 25mm, 2.5cm or 0.025m (default: 25mm)")
    p.add_argument("-o", "--output", required=True, help="calibration YAML to write, e.g. calibration/rig.yaml")
    p.add_argument("--preview", help="also write the rectified pair with epipolar lines to this image")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import cv2

    from streamfuse import calibrate as cb

    left, right = cb.expand_images(args.left), cb.expand_images(args.right)
    cal = cb.calibrate_stereo(left, right, cb.parse_board(args.board), cb.parse_length(args.square))
    cal.save(args.output)
    print(cb.summary(cal))
    print(f"wrote {args.output}")
    if args.preview:
        used = set(cal.pairs_used)
        lp, rp = next((lp, rp) for lp, rp in zip(left, right, strict=True) if f"{lp.name}+{rp.name}" in used)
        pair = cb.preview(cal, cv2.imread(str(lp)), cv2.imread(str(rp)))
        if not cv2.imwrite(args.preview, pair):
            raise UserError(f"cannot write preview {args.preview}: unknown extension or unwritable folder")
        print(f"wrote {args.preview}")
    return 0


# --- run / node -----------------------------------------------------------------------------------------


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a rig (capture, fusion and encoder nodes) from a rig.yaml")
    p.add_argument("config", help="rig YAML, e.g. configs/demo.yaml")
    p.add_argument("--frames", type=int, help="stop after this many mono frames")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--json", help="also write the run summary to this JSON file")
    p.add_argument("--metrics-port", metavar="[HOST:]PORT", help="serve Prometheus metrics (needs [observe])")
    p.add_argument("--preview-port", metavar="[HOST:]PORT", help="serve the live preview page (needs [observe])")
    p.add_argument("--trace", metavar="FILE", help="write per-frame stage timestamps as a Chrome trace (Perfetto)")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    import json

    from streamfuse import preflight  # noqa: F401 - registers the pre-launch checks that load_config runs
    from streamfuse.nodes.launcher import format_summary, run_rig

    if args.frames is not None and args.frames <= 0:
        raise UserError("--frames must be a positive number")
    config = args.config
    views = {"metrics_port": args.metrics_port, "preview_port": args.preview_port, "trace": args.trace}
    if any(views.values()):  # the command line adds to (or overrides) the rig's observe: section
        import dataclasses

        from streamfuse.config import load_config

        config = load_config(args.config)
        config.observe = dataclasses.replace(config.observe, **{k: v for k, v in views.items() if v})
    summary = run_rig(config, frames=args.frames, duration=args.duration)
    print(format_summary(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0 if all(code == 0 for code in summary["exit_codes"].values()) else 1


def _add_transcode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcode",
        help="colorize a recorded mono video with a colour video, image or image folder (lossless, keeps audio)",
        description="Runs the rig's capture, fusion and encoder nodes in file mode. Every mono frame comes out, "
        "with the mono file's timestamps, start offset, frame rate and audio. Exit status: 0 done, 1 failed, "
        "130 interrupted (the file written so far is playable).",
    )
    p.add_argument("--mono", help="mono (or NIR) video; its timing and audio are kept (required without --batch)")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument("--color", help="colour video, folder of colour images (one per mono frame) or one image")
    colour.add_argument("--ref", help="one colour reference image for every frame (or a folder of images)")
    p.add_argument("-o", "--output", help="output video (.mp4 or .mkv) (required without --batch)")
    p.add_argument("--engine", help="engine registry name (default: the config's, else guided)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="engine option (repeatable)")
    p.add_argument("--config", help="rig YAML whose sync, engine, encoder and limit settings to use")
    p.add_argument(
        "--on-corrupt",
        choices=["fail", "skip"],
        default="fail",
        help="fail: a damaged frame ends the run, naming file, frame and byte (default); skip: drop and count it",
    )
    p.add_argument("--json", help="also write the summary to this JSON file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--batch",
        metavar="JOBS.yaml",
        help="run many mono/colour pairs from a jobs file (skips finished ones; writes an outputs manifest)",
    )
    p.add_argument(
        "--cluster",
        metavar="auto|local|ADDRESS",
        help="with --batch: run the jobs as Ray tasks (auto: the running cluster; local: a private Ray instance "
        "here; or a ray:// address); needs the [cluster] extra. Without it the jobs run here one after another",
    )
    p.set_defaults(func=_cmd_transcode)


def _cmd_transcode(args: argparse.Namespace) -> int:
    from streamfuse import transcode

    if args.batch:
        from streamfuse.batch import format_result, run_batch

        result = run_batch(args.batch, cluster=args.cluster)
        print(format_result(result))
        return 0 if result.ok else 1
    if args.cluster:
        raise UserError("--cluster needs --batch JOBS.yaml")
    given = (("--mono", args.mono), ("--color or --ref", args.color or args.ref), ("-o", args.output))
    missing = [flag for flag, value in given if not value]
    if missing:
        raise UserError(
            f"transcode needs --mono, --color or --ref, and -o (or --batch JOBS.yaml); missing: {', '.join(missing)}"
        )
    args.options = _engine_options(args.opt)
    return transcode.main(args)


def _add_node(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("node", help="run one node of a rig on its own (so a rig can span machines)")
    p.add_argument("role", choices=["capture", "fuse", "encode"], help="which node")
    p.add_argument("--config", required=True, help="rig YAML")
    p.add_argument("--name", help="camera name (capture nodes)")
    p.add_argument("--run-dir", help="folder of the default ipc endpoints (default: /tmp/streamfuse-<rig name>)")
    p.add_argument("--frames", type=int, help="capture: stop after this many frames")
    p.add_argument("--epoch-ns", type=int, help="capture, live mode: wall-clock ns of frame time 0 (default: now)")
    p.add_argument("--report", action="store_true", help="print JSON stats lines on stdout (used by `run`)")
    p.set_defaults(func=_cmd_node)


def _cmd_node(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from streamfuse.config import load_config

    cfg = load_config(args.config)
    run_dir = args.run_dir or f"{tempfile.gettempdir()}/streamfuse-{cfg.name}"
    if args.role == "capture":
        from streamfuse.nodes.capture import run_capture_node

        if not args.name:
            raise UserError(f"node capture needs --name, one of: {', '.join(cfg.cameras)}")
        summary = run_capture_node(cfg, args.name, run_dir, args.frames, args.epoch_ns, report=args.report)
    elif args.role == "fuse":
        from streamfuse.nodes.fuse import run_fuse_node

        summary = run_fuse_node(cfg, run_dir, report=args.report)
    else:
        from streamfuse.nodes.encode import run_encode_node

        summary = run_encode_node(cfg, run_dir, report=args.report)
    if not args.report:
        print(json.dumps(summary, indent=2, default=str))
    return 0


# --- keygen --------------------------------------------------------------------------------------------


def _add_keygen(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="write CURVE key pairs for encrypted, authenticated tcp links between hosts")
    p.add_argument("--out", required=True, help="folder for the key files")
    p.add_argument(
        "--name",
        action="append",
        help="key pair name, repeatable (default: server and client); writes NAME.key and NAME.key_secret",
    )
    p.add_argument("--force", action="store_true", help="replace key files that already exist")
    p.set_defaults(func=_cmd_keygen)


def _cmd_keygen(args: argparse.Namespace) -> int:
    from streamfuse.security import create_keypair

    for name in args.name or ["server", "client"]:
        public, secret = create_keypair(args.out, name, args.force)
        print(f"{name}: public key {public}, secret key {secret} (owner-only; never share it)")
    print(
        "binding side: server_secret_key + authorized_clients (a folder holding the clients' .key files); "
        "connecting side: client_secret_key + server_public_key"
    )
    return 0


# --- build-engine --------------------------------------------------------------------------------------


def _add_build_engine(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engine", help="compile an engine's ONNX graph(s) to a cached TensorRT plan (NVIDIA GPU)")
    p.add_argument("--engine", help="engine whose shipped ONNX graph(s) to build, e.g. ccdc")
    p.add_argument("--onnx", help="build this ONNX file instead of an engine's shipped graph(s)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp16", help="plan precision (default: fp16)")
    p.add_argument("--min", type=_parse_size, default=(320, 240), metavar="WxH", help="smallest frame (320x240)")
    p.add_argument("--opt", type=_parse_size, default=(1280, 720), metavar="WxH", help="frame to tune for (1280x720)")
    p.add_argument("--max", type=_parse_size, default=(1920, 1088), metavar="WxH", help="largest frame (1920x1088)")
    p.add_argument("--out", help="plan cache folder (default: ~/.cache/streamfuse/tensorrt, or $STREAMFUSE_CACHE)")
    p.add_argument("--force", action="store_true", help="rebuild even when a matching plan is cached")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default: 0)")
    p.set_defaults(func=_cmd_build_engine)


def _cmd_build_engine(args: argparse.Namespace) -> int:
    from streamfuse.engines.assets import load_engine_manifest
    from streamfuse.runtime.shapes import ShapeProfile
    from streamfuse.runtime.tensorrt import warm_cache

    if not args.engine and not args.onnx:
        raise UserError("give --engine NAME (a shipped engine) or --onnx PATH")
    try:
        profile = ShapeProfile(args.min, args.opt, args.max)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.onnx:
        graphs = [args.onnx]
    else:
        manifest, folder = load_engine_manifest(args.engine)
        graphs = [folder / name for name in manifest.graphs.values()]
    for cache in warm_cache(graphs, args.precision, profile, args.out, args.device, force=args.force):
        print(f"engine cache {cache} ({args.precision}, profile {profile})")
    return 0


# --- eval ----------------------------------------------------------------------------------------------


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score engines on the video (CCDC) and stereo (dual-lens) benchmark protocols")
    p.add_argument(
        "--protocol",
        default="all",
        help="video, stereo, stream (13-frame clips through open_stream(): all/far PSNR, tCE) or all "
        "(default: all = video and stereo); oldfilm: Pik-Fix's damaged stills and clips (grey and "
        "denoise+guided baselines unless --engines names the methods); nir: held-aside real NIR/RGB pairs "
        "(--data: the nir-train folder), reference and prior modes, NIR baselines always included "
        "(default engines: cocolor,cocolor-paper)",
    )
    p.add_argument("--engines", default="naive,guided", help="comma-separated engine names (default: naive,guided)")
    p.add_argument("--data", help="benchmark folder (default: /usr/share/doc/opencv-doc/examples/data)")
    p.add_argument("--scales", default="4,8", help="video protocol scale gaps (default: 4,8; stereo uses 1 and 4)")
    p.add_argument("--json", metavar="OUT.json", help="write every per-case record and the means as JSON")
    p.add_argument("--images", metavar="DIR", help="write side-by-side PNGs for a few cases per dataset")
    p.add_argument("--plot", metavar="OUT.png", help="chroma PSNR plot (default: next to --json, same stem)")
    p.add_argument("--quick", action="store_true", help="3 clips per video instead of 20 (a smoke run)")
    p.add_argument("--opt", action="append", default=[], metavar="ENGINE:KEY=VALUE", help="engine option (repeatable)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from streamfuse.evaluation import EvalConfig, protocol_list
    from streamfuse.evaluation.command import evaluate

    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    options: dict[str, dict] = {}
    for item in args.opt:
        engine, sep, pair = item.partition(":")
        if not sep or engine not in engines:
            raise UserError(f"--opt expects ENGINE:KEY=VALUE with ENGINE one of {', '.join(engines)}, got {item!r}")
        options.setdefault(engine, {}).update(_engine_options([pair]))
    try:
        protocols = protocol_list(args.protocol)
        scales = tuple(float(v) for v in args.scales.split(","))
    except ValueError as exc:
        raise UserError(f"{exc} (--protocol video|stereo|all, --scales like 4,8)") from exc
    cfg = EvalConfig(protocols, engines, args.data, scales, args.quick, options)
    evaluate(cfg, args.json, args.images, args.plot, command="streamfuse " + " ".join(sys.argv[1:]))
    return 0


# --- bench ---------------------------------------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="engine throughput (fps, p50/p99 ms, peak RSS), size sweep, end-to-end pipeline")
    p.add_argument("--engine", default="guided", help="engine registry name (default: guided)")
    p.add_argument("--size", type=_parse_size, default=(768, 576), metavar="WxH", help="mono frame size (768x576)")
    p.add_argument("--scale", type=float, default=4.0, help="scale gap of the colour reference (default: 4)")
    p.add_argument("--frames", type=int, default=150, help="timed frames after 10 warm-up frames (default: 150)")
    p.add_argument(
        "--period", type=int, default=1, help="push a colour reference every K mono frames on the stream path (1)"
    )
    p.add_argument("--json", metavar="OUT", help="write the result as JSON")
    p.add_argument("--pipeline", action="store_true", help="also run capture->fuse->encode on the synthetic rig")
    p.add_argument(
        "--pipeline-mode",
        choices=["offline", "live"],
        default="offline",
        help="offline: as fast as possible, no drops (throughput); live: paced at 30 fps (latency)",
    )
    p.add_argument("--pipeline-config", metavar="RIG.yaml", help="run this rig for --pipeline (e.g. configs/demo.yaml)")
    p.add_argument(
        "--observe",
        action="store_true",
        help="with --pipeline: run it with metrics, preview and trace off and on, alternated (--observe-rounds "
        "times), and report both fps and their ratio",
    )
    p.add_argument("--observe-rounds", type=int, default=3, metavar="N", help="off/on pairs for --observe (3)")
    p.add_argument("--sweep", action="store_true", help="cost versus pixels from 320x240 to 1280x720")
    p.add_argument("--versus", metavar="ENGINE", help="also bench ENGINE in the same run and report the fps ratio")
    p.add_argument("--threads", type=int, help="OpenCV threads for the engine-only run (default: one per core)")
    p.add_argument("--backend", help="inference backend of a learned engine: onnxruntime, torch or tensorrt")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="engine option (repeatable)")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from streamfuse import bench

    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.scale < 1:
        raise UserError(f"--scale must be >= 1, got {args.scale}")
    options = _engine_options(args.opt)
    if args.backend:
        options["backend"] = args.backend
    if args.sweep:
        result: dict | list = bench.sweep(args.engine, args.scale, args.frames, options)
    else:
        result = bench.bench_engine(
            args.engine, args.size, args.scale, args.frames, options, threads=args.threads, period=args.period
        )
        if args.pipeline:
            run = (args.engine, args.size, args.scale, args.frames, options, args.pipeline_mode)
            result.update(bench.bench_pipeline(*run, config=args.pipeline_config))
            if args.observe:
                rounds = max(1, args.observe_rounds)
                result.update(bench.bench_observe_overhead(*run, config=args.pipeline_config, rounds=rounds))
    if args.versus and isinstance(result, dict):  # the ratio against another engine, measured side by side
        other = bench.bench_engine(args.versus, args.size, args.scale, args.frames, threads=args.threads)
        result["versus"] = {k: other[k] for k in ("engine", "fps", "cpu_fps", "p50_ms")}
        result["fps_ratio"] = round(result["fps"] / other["fps"], 3) if other["fps"] else None
    bench.print_result(result)
    if args.versus and isinstance(result, dict):
        vs = result["versus"]
        print(f"  versus        {args.versus} {vs['fps']} fps in the same run: ratio {result['fps_ratio']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


# --- synth ---------------------------------------------------------------------------------------------


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize x264-encoded training sequences (motion, occlusion, blur) from stills")
    p.add_argument("--out", required=True, help="dataset folder (seq_NNNNN.mp4 + manifest.json)")
    p.add_argument("--sequences", type=int, default=600, help="number of sequences (default: 600)")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PATH",
        help="still or video file (repeatable; default: scikit-image, scikit-learn, opencv-doc stills)",
    )
    p.add_argument("--size", type=_parse_size, default=(512, 384), help="frame size WxH (default: 512x384)")
    p.add_argument("--frames", type=int, default=8, help="frames per sequence = max time gap + 1 (default: 8)")
    p.add_argument("--camera-speed", type=float, default=3.0, help="max camera pan, px/frame (default: 3)")
    p.add_argument("--object-speed", type=float, default=6.0, help="max object speed, px/frame (default: 6)")
    p.add_argument("--parallax", type=float, default=0.6, help="extra motion of the nearest depth layer (default: 0.6)")
    p.add_argument("--elastic", type=float, default=1.5, help="local elastic warp amplitude, px (default: 1.5)")
    p.add_argument("--blur-prob", type=float, default=0.5, help="share of motion-blurred sequences (default: 0.5)")
    p.add_argument("--crf", default="18,30", help="x264 CRF range lo,hi (default: 18,30)")
    p.add_argument("--noise", type=float, default=0.0, help="sensor noise a (std a*sqrt(k)); 0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_synth)


def _cmd_synth(args: argparse.Namespace) -> int:
    from streamfuse.data import synth

    try:
        lo, hi = (int(v) for v in args.crf.split(","))
    except ValueError as exc:
        raise UserError(f"--crf expects lo,hi like 18,30, got {args.crf!r}") from exc
    opt = synth.SynthOptions(
        size=args.size,
        frames=args.frames,
        camera_speed=args.camera_speed,
        object_speed=args.object_speed,
        parallax=args.parallax,
        elastic=args.elastic,
        blur_prob=args.blur_prob,
        crf=(lo, hi),
        noise=args.noise,
    )
    try:
        stills = synth.file_sources(args.source) if args.source else None
        manifest = synth.synthesize(args.out, args.sequences, stills, opt, seed=args.seed, progress=True)
    except synth.SynthError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {len(manifest.sequences)} sequences to {args.out} in {manifest.seconds:.0f} s")
    return 0


# --- clips ---------------------------------------------------------------------------------------------


def _add_clips(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clips", help="cut the allow-listed real videos into 13-frame training clips (no scene cut)")
    p.add_argument("--out", help="dataset folder for manifest.json (clips are decoded from the videos on demand)")
    p.add_argument("--list", action="store_true", help="only list the installed allow-listed videos")
    p.add_argument("--max-per-video", type=int, default=0, help="keep at most N evenly spaced clips per video (0: all)")
    p.set_defaults(func=_cmd_clips)


def _cmd_clips(args: argparse.Namespace) -> int:
    from streamfuse.data.benchmark import DataError
    from streamfuse.data.video import extract_clips, training_videos

    if args.list or not args.out:
        videos = training_videos()
        for v in videos:
            print(v)
        print(f"{len(videos)} allow-listed training videos (install them with tools/install_training_data.sh)")
        return 0
    try:
        m = extract_clips(args.out, max_clips_per_video=args.max_per_video or None, progress=True)
    except DataError as exc:
        raise UserError(str(exc)) from exc
    c = m.counts
    print(
        f"wrote {args.out}/manifest.json: {c['clips']} clips, {c['frames']} frames from {c['videos']} videos "
        f"(train {c['train_clips']} clips / {c['train_frames']} frames, val {c['val_clips']} / {c['val_frames']})"
    )
    return 0


# --- train ---------------------------------------------------------------------------------------------


def _add_train(sub: argparse._SubParsersAction) -> None:
    from streamfuse.train.registry import available_trainers

    names = available_trainers()
    p = sub.add_parser(
        "train",
        help=f"train a learned engine ({', '.join(names)}; needs the [train] extra)",
        description="Train a learned engine with the one training loop (progress bar, validation every epoch, "
        "checkpoints in <out>/, resume) and optionally export it. Learned engines: " + ", ".join(names) + ".",
    )
    p.add_argument("engine", choices=names, help="learned engine to train: " + ", ".join(names))
    p.add_argument("--config", required=True, help="training YAML (configs/train/ENGINE*.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt (a finished run only exports)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train (default auto)")
    p.add_argument("--max-minutes", type=float, metavar="M", help="stop cleanly after M minutes; --resume continues")
    p.add_argument("--export", metavar="DIR", help="export the best checkpoint as an engine folder when done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs keep one line per epoch)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    try:
        from streamfuse.train.loop import fit
    except ImportError as exc:
        raise UserError(f"training needs torch ({exc}); run `pip install streamfuse[train]`") from exc
    command = f"streamfuse train {args.engine} --config {args.config}"
    command += f" --export {args.export}" if args.export else ""
    try:
        summary = fit(
            args.engine,
            args.config,
            resume=args.resume,
            device=args.device,
            max_minutes=args.max_minutes,
            export=args.export,
            progress=not args.no_progress,
            command=command,
        )
    except (ValueError, KeyError) as exc:
        raise UserError(str(exc)) from exc
    best = ", ".join(f"{k} {v}" for k, v in summary.best.items() if k != "epoch")
    verb = "stopped at the time budget after" if summary.status == "stopped" else "trained"
    print(f"{summary.engine}: {verb} {summary.epochs} epochs ({summary.step} steps, {summary.seconds:.0f} s): {best}")
    if summary.status == "stopped":
        print(f"resume with: streamfuse train {args.engine} --config {args.config} --resume")
    if summary.exported:
        print(f"exported {summary.exported}")
    return 0


# --- registry of commands -------------------------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_build_engine,
    _add_run,
    _add_transcode,
    _add_node,
    _add_keygen,
    _add_colorize,
    _add_calibrate,
    _add_eval,
    _add_bench,
    _add_synth,
    _add_clips,
    _add_train,
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streamfuse")
    except PackageNotFoundError:  # running from a source tree that is not installed
        from streamfuse import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to generate the command docs)."""
    parser = argparse.ArgumentParser(
        prog="streamfuse", description="Fuse a high-resolution mono camera with a low-resolution colour camera."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"streamfuse {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamfuse`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    from streamfuse.errors import USER_ERRORS

    try:
        return int(args.func(args) or 0)
    except (UserError, *USER_ERRORS) as exc:
        print(f"streamfuse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
