//go:build !linux

package cluster_test

import "os/exec"

func dieWithParent(cmd *exec.Cmd) {}
