"""Give a saved pipeline a distilled student (chapter 07a), with the start temperature τ it was measured at: the
pipeline is loaded, the student attached, and the whole folder written again (save_pretrained: complete or not at
all), so its pipeline.json lists the student. Shipping one in the package:

    python tools/add_student.py ld4lg_edu/assets/default_model STUDENT_DIR --noise-scale 1.2
"""
import argparse
from pathlib import Path

from ld4lg_edu.distill import load_student
from ld4lg_edu.pipeline import LatentDiffusionPipeline


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pipeline", type=Path); p.add_argument("student", type=Path)
    p.add_argument("--noise-scale", type=float, default=1.0, help="τ: the student samples from τ·z_1")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    args = p.parse_args()
    pipe, student = LatentDiffusionPipeline.from_pretrained(args.pipeline), load_student(args.student)
    student.noise_scale = args.noise_scale
    before = {f.relative_to(args.pipeline): f.read_bytes() for f in args.pipeline.rglob("*") if f.is_file()}
    LatentDiffusionPipeline(pipe.autoencoder, pipe.denoiser, pipe.schedule, label_names=pipe.label_names,
                            sampler=pipe.sampler, steps=pipe.steps,
                            students={**pipe.students, student.steps: student}).save_pretrained(args.pipeline,
                                                                                                 args.dtype)
    changed = [str(f) for f, data in before.items() if (args.pipeline / f).read_bytes() != data]
    print(f"{args.pipeline}: students {sorted({*pipe.students, student.steps})}; files rewritten with other bytes: "
          f"{changed or 'none'}")


if __name__ == "__main__":
    main()
