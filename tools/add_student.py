"""Give a saved pipeline a distilled student (chapter 07a), with the start temperature τ it was measured at: the
student is written with save_student to PIPELINE/student/steps_N (whole or not at all, in bfloat16 like the pipeline's
own networks), pipeline.json then lists it (written atomically), and the pipeline is loaded again as a check. The
pipeline's other files are left as they are. Shipping one in the package:

    python tools/add_student.py ld4lg_edu/assets/default_model STUDENT_DIR --noise-scale 1.3
"""
import argparse, json
from pathlib import Path

import torch

from ld4lg_edu.core import atomic_file
from ld4lg_edu.distill import load_student, save_student
from ld4lg_edu.pipeline import STUDENT_DIR, LatentDiffusionPipeline


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pipeline", type=Path); p.add_argument("student", type=Path)
    p.add_argument("--noise-scale", type=float, default=1.0, help="τ: the student samples from τ·z_1")
    args = p.parse_args()
    pipe, student = LatentDiffusionPipeline.from_pretrained(args.pipeline), load_student(args.student)
    if student.config != pipe.denoiser.config:
        p.error(f"{args.student} was not distilled from this pipeline's denoiser (its config differs)")
    student.noise_scale = args.noise_scale
    save_student(student.to(torch.bfloat16), args.pipeline / STUDENT_DIR / f"steps_{student.steps}", pipe.schedule)
    meta = json.loads((args.pipeline / "pipeline.json").read_text())
    meta["students"] = sorted({*meta.get("students", []), student.steps})
    with atomic_file(args.pipeline / "pipeline.json") as tmp: Path(tmp).write_text(json.dumps(meta, indent=1))
    again = LatentDiffusionPipeline.from_pretrained(args.pipeline)
    print(f"{args.pipeline}: students {sorted(again.students)}, the {student.steps}-step one with noise_scale "
          f"{again.students[student.steps].noise_scale:g}")


if __name__ == "__main__":
    main()
