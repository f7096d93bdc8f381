//go:build !unix

package diskguard

import "errors"

// statfs is not implemented here: the guard then never refuses.
func statfs(string) (Usage, error) {
	return Usage{}, errors.New("diskguard: statfs not supported on this platform")
}
