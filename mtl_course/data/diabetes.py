"""A small real multi-task regression problem built from data that ships with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes

from mtl_course.data.types import TaskData


def diabetes_tasks() -> TaskData:
    """The diabetes data of Efron et al. (2004) as four tasks: patient groups by sex and age.

    442 patients, target: disease progression one year after baseline. A
    patient's group (sex 1 or 2, as coded in the data, and age at most or above
    the median) defines the task, so each task is "predict progression for
    this kind of patient": the same question on four sub-populations that are
    plausibly related but not identical, the setting of regularized MTL (as in
    the classic school-exam data). The nine remaining inputs (age, BMI, blood
    pressure, six serum measurements) are standardized with the mean and
    standard deviation of all patients (an unsupervised step that does not
    look at the targets).
    """
    data = load_diabetes(scaled=False)
    names = list(data.feature_names)
    sex, age = data.data[:, names.index("sex")], data.data[:, names.index("age")]
    keep = [j for j, name in enumerate(names) if name != "sex"]
    inputs = data.data[:, keep]
    inputs = (inputs - inputs.mean(axis=0)) / inputs.std(axis=0)
    older = age > np.median(age)
    X, y, task_names = [], [], []
    for code in (1.0, 2.0):
        for is_older, label in ((False, "younger"), (True, "older")):
            rows = np.flatnonzero((sex == code) & (older == is_older))
            X.append(inputs[rows])
            y.append(data.target[rows].astype(np.float64))
            task_names.append(f"sex {int(code)}, {label}")
    return TaskData(X=X, y=y, task_names=tuple(task_names), feature_names=tuple(names[j] for j in keep))
