"""mmmimic setup: an MMDetection 3.x extension, installable with pip and usable through mim."""
import os
import os.path as osp
import shutil
import sys
import warnings

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def get_version():
    scope = {}
    with open(osp.join(ROOT, 'mmmimic', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Read a requirements file, following ``-r`` includes, dropping comments."""
    reqs = []
    with open(osp.join(ROOT, fname)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(
                    osp.join(osp.dirname(fname), line[3:].strip()))
            else:
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Expose configs/ and tools/ as ``mmmimic/.mim`` so ``mim train mmmimic`` finds them.

    Editable installs get symlinks (edits are seen at once), wheel/sdist builds get copies,
    exactly as mmdet's setup.py does.
    """
    if 'develop' in sys.argv or any(a.startswith('editable') for a in sys.argv):
        mode = 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        mode = 'symlink' if os.environ.get('MMMIMIC_MIM_SYMLINK') else 'copy'
    filenames = ['tools', 'configs', 'model-index.yml']
    mim_path = osp.join(ROOT, 'mmmimic', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for filename in filenames:
        src = osp.join(ROOT, filename)
        tar = osp.join(mim_path, filename)
        if not osp.exists(src):
            continue
        if osp.isfile(tar) or osp.islink(tar):
            os.remove(tar)
        elif osp.isdir(tar):
            shutil.rmtree(tar)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), tar)
        else:
            if osp.isfile(src):
                shutil.copyfile(src, tar)
            else:
                shutil.copytree(src, tar)
            if not osp.exists(tar):
                warnings.warn(f'Cannot copy {src} into {tar}')


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmmimic',
        version=get_version(),
        description='Feature-mimic distillation of small detectors (Li et al., CVPR 2017) '
        'for MMDetection 3.x',
        long_description=open(osp.join(ROOT, 'README.md')).read()
        if osp.exists(osp.join(ROOT, 'README.md')) else '',
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
        include_package_data=True,
        package_data={'mmmimic': ['.mim/**/*', '.mim/*', 'testing/configs/**/*.py']},
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={'tests': parse_requirements('requirements/tests.txt'),
                        'mim': parse_requirements('requirements/mminstall.txt'),
                        'deploy': parse_requirements('requirements/deploy.txt')},
        zip_safe=False)
