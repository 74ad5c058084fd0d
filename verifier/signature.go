package verifier

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
)

// Signature checks, done here directly with the standard library rather
// than through a JOSE library: the algorithm is the one bound to the key
// (checked by the caller), so there is exactly one way to check each
// signature.

// ecParams are the sizes and bounds of the curve of an ES algorithm.
type ecParams struct {
	size  int    // bytes of r and of s
	n     []byte // the group order, big-endian, size bytes
	halfN []byte // floor(n/2), big-endian, size bytes: the largest S accepted
}

func newECParams(c elliptic.Curve) ecParams {
	size := (c.Params().BitSize + 7) / 8
	n := c.Params().N
	return ecParams{
		size:  size,
		n:     n.FillBytes(make([]byte, size)),
		halfN: new(big.Int).Rsh(n, 1).FillBytes(make([]byte, size)),
	}
}

var (
	p256Params = newECParams(elliptic.P256())
	p384Params = newECParams(elliptic.P384())
	p521Params = newECParams(elliptic.P521())
)

// maxDERSize is the size of an ASN.1 ECDSA signature on P-521 at most:
// 3 (sequence header) + 2 × (2 + 1 + 66) bytes.
const maxDERSize = 3 + 2*(3+66)

var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash} // RFC 7518 §3.5

// checkSignature verifies sig over the signing input msg with k, whose
// algorithm the token names and which usable accepted. Its scratch space
// comes from mem.
func checkSignature(k Key, msg, sig []byte, mem *arena) *Error {
	var h crypto.Hash
	switch k.Algorithm {
	case "EdDSA":
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k.Public.(ed25519.PublicKey), msg, sig) {
			return errSignature
		}
		return nil
	case "ES256", "RS256", "PS256":
		h = crypto.SHA256
	case "ES384", "RS384", "PS384":
		h = crypto.SHA384
	default:
		h = crypto.SHA512
	}
	digest := mem.take(h.Size())
	switch h {
	case crypto.SHA256:
		s := sha256.Sum256(msg)
		copy(digest, s[:])
	case crypto.SHA384:
		s := sha512.Sum384(msg)
		copy(digest, s[:])
	default:
		s := sha512.Sum512(msg)
		copy(digest, s[:])
	}
	switch k.Algorithm[0] {
	case 'E':
		var p *ecParams
		switch k.Algorithm {
		case "ES256":
			p = &p256Params
		case "ES384":
			p = &p384Params
		default:
			p = &p521Params
		}
		return checkECDSA(k.Public.(*ecdsa.PublicKey), p, digest, sig, mem.take(maxDERSize))
	case 'R':
		if rsa.VerifyPKCS1v15(k.Public.(*rsa.PublicKey), h, digest, sig) != nil {
			return errSignature
		}
	default:
		if rsa.VerifyPSS(k.Public.(*rsa.PublicKey), h, digest, sig, pssOptions) != nil {
			return errSignature
		}
	}
	return nil
}

// checkECDSA verifies a JWS ECDSA signature, r||s of fixed width (RFC 7518
// §3.4). It accepts only the canonical form: 0 < r < n and 0 < s <= n/2
// (low S). For each valid signature (r, s), (r, n-s) is valid too; refusing
// the high one leaves a single valid string per signed token. Latch's
// signer emits low S.
func checkECDSA(pub *ecdsa.PublicKey, p *ecParams, digest, sig, buf []byte) *Error {
	if len(sig) != 2*p.size {
		return errSignature
	}
	r, s := sig[:p.size], sig[p.size:]
	if isZero(r) || isZero(s) || bytes.Compare(r, p.n) >= 0 || bytes.Compare(s, p.n) >= 0 {
		return errSignature
	}
	if bytes.Compare(s, p.halfN) > 0 {
		return errHighS
	}
	// ASN.1 DER SEQUENCE of two INTEGERs, in buf (maxDERSize bytes).
	body := appendDERInt(appendDERInt(buf[3:3], r), s)
	var der []byte
	if len(body) < 0x80 {
		buf[1], buf[2] = 0x30, byte(len(body))
		der = buf[1 : 3+len(body)]
	} else {
		buf[0], buf[1], buf[2] = 0x30, 0x81, byte(len(body))
		der = buf[:3+len(body)]
	}
	if !ecdsa.VerifyASN1(pub, digest, der) {
		return errSignature
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendDERInt appends the DER INTEGER of the positive big-endian v (not
// zero).
func appendDERInt(dst, v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if v[0]&0x80 != 0 {
		dst = append(dst, 0x02, byte(len(v)+1), 0)
	} else {
		dst = append(dst, 0x02, byte(len(v)))
	}
	return append(dst, v...)
}
