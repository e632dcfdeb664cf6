from setuptools import find_packages, setup

setup(
    name="adf",
    version="0.1.0",
    description="AntiDeepfake recipes: post-training SSL speech models into deepfake speech detectors",
    packages=find_packages(include=["adf", "adf.*"]),
    package_data={"adf.serve": ["static/*.html"]},  # the page of `adf serve`
    python_requires=">=3.10",
    install_requires=[
        line.strip()
        for line in open("requirements.txt")
        if line.strip() and not line.startswith("#")
    ],
    entry_points={"console_scripts": ["adf=adf.cli:main"]},
)
