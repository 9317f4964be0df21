package schema

import (
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// checkHelmChart keeps version with repoURL: a chart in the Git repository
// is the version its Chart.yaml says, and a version there would suggest a
// choice that is not made.
func checkHelmChart(spec *keelsonv1alpha1.HelmChartSpec) []fieldProblem {
	if spec.Version != "" && spec.RepoURL == "" {
		return []fieldProblem{{sels("spec", "version"), "only with repoURL: a chart in the repository is the version its Chart.yaml says"}}
	}
	return nil
}
