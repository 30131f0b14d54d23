"""setuptools entry point: everything is read from settings.ini (nbdev 2 convention)."""
from configparser import ConfigParser
from pathlib import Path
import shutil
import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]
COURSE = ("*.ipynb", "images", "results")  # what `ld4lg course` copies out: the chapters and the files they read


class build_py_with_course(build_py):
    "Also put the chapters (nbs/) into the built package as ld4lg_edu/course/, so a wheel carries them."
    def run(self):
        super().run()
        source, dest = Path(cfg["nbs_path"]), Path(self.build_lib) / cfg["lib_name"] / "course"
        if not (source / "index.ipynb").is_file(): return  # building from an sdist made without nbs/: nothing to add
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for pattern in COURSE:
            for path in sorted(source.glob(pattern)):
                if path.name.startswith((".", "_")): continue
                if path.is_dir(): shutil.copytree(path, dest / path.name)
                else: shutil.copy2(path, dest / path.name)


licenses = {"apache2": ("Apache-2.0", "OSI Approved :: Apache Software License")}
lic = licenses[cfg["license"]]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic[0],
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: " + cfg["audience"].title(),
        "License :: " + lic[1],
        "Natural Language :: " + cfg["language"].title(),
        "Programming Language :: Python :: 3",
    ],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_packages(include=[cfg["lib_name"], cfg["lib_name"] + ".*"]),
    include_package_data=True,
    package_data={cfg["lib_name"]: ["assets/*", "assets/**/*"]},
    install_requires=cfg["requirements"].split(),
    extras_require={name: cfg.get(f"{name}_requirements", "").split() for name in ("dev", "eval", "course", "site")},
    cmdclass={"build_py": build_py_with_course},
    entry_points={"console_scripts": cfg["console_scripts"].split(),
                  "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
