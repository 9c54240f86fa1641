// Package eip3009 hashes, verifies and signs EIP-3009
// TransferWithAuthorization messages: the EIP-712 typed data by which the
// holder of a token such as USDC authorizes a transfer that anyone may then
// submit on chain. x402's "exact" payment scheme on EVM chains carries one
// in the payment payload, with its signature.
//
// Verify checks what can be checked off chain: that the signature is the
// From address's, over this authorization and this token's domain. It
// does not check the balance, that the nonce is unused, or that the
// authorization is due (see Authorization.ValidAt); and it knows only
// externally owned accounts, not smart-contract wallets (EIP-1271).
//
// Functions of this package are pure, and safe for concurrent use while no
// one modifies the big.Int values of their arguments. Their
// errors wrap evm.ErrMalformed (a signature that is not well formed),
// evm.ErrSignatureMismatch (a signature by another key), or
// eip712.ErrInvalid (a value that cannot be hashed, such as a nil,
// negative or over-256-bit amount, or a nil or zero private key).
package eip3009

import (
	"fmt"
	"math/big"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/tollgate/tollgate/internal/eip712"
	"github.com/tollgate/tollgate/internal/evm"
)

// TransferWithAuthorizationType is the encodeType of the signed message, as
// EIP-3009 and USDC's FiatTokenV2 define it.
const TransferWithAuthorizationType = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"

// transferWithAuthorizationTypeHash is TypeHash(TransferWithAuthorizationType),
// 0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267. It is
// never written.
var transferWithAuthorizationTypeHash = eip712.TypeHash(TransferWithAuthorizationType)

// Authorization is a TransferWithAuthorization message: From allows the
// transfer of Value to To, once (Nonce), within a time window.
//
// The integers are *big.Int because they are uint256 on chain and the
// signature covers their exact value: a client may sign, say, a validBefore
// of 2²⁵⁶-1 for "never expires", and an Authorization must carry it to
// verify. x402 sends them as decimal strings; big.Int's SetString(s, 10)
// parses them. Each must be set, 0 to 2²⁵⁶-1; the functions of this package
// only read them. The zero Authorization has nil integers and cannot be
// hashed.
type Authorization struct {
	// From is the token holder who signs; To receives the tokens.
	From, To evm.Address
	// Value is the amount in the token's base units (USDC has 6 decimals:
	// 1 USDC is 1000000).
	Value *big.Int
	// ValidAfter and ValidBefore are Unix times in seconds. The token
	// contract accepts the authorization in a block whose timestamp is
	// strictly between them.
	ValidAfter, ValidBefore *big.Int
	// Nonce is a unique 32-byte value chosen by the signer; the contract
	// accepts each (From, Nonce) once.
	Nonce [32]byte
}

// ValidAt reports whether the contract would accept a in a block of time
// t: ValidAfter < t < ValidBefore, in whole seconds. A caller that needs a
// margin for the time a settlement takes shifts t. It is false if either
// bound is nil.
func (a Authorization) ValidAt(t time.Time) bool {
	if a.ValidAfter == nil || a.ValidBefore == nil {
		return false
	}
	now := big.NewInt(t.Unix())
	return a.ValidAfter.Cmp(now) < 0 && now.Cmp(a.ValidBefore) < 0
}

// StructHash returns hashStruct(a), the Keccak-256 of the
// TransferWithAuthorization type hash and a's six members. It fails if an
// integer is nil, negative or over 256 bits.
func StructHash(a Authorization) ([32]byte, error) {
	value, err := eip712.EncodeUint256(a.Value)
	if err != nil {
		return [32]byte{}, fmt.Errorf("value: %w", err)
	}
	after, err := eip712.EncodeUint256(a.ValidAfter)
	if err != nil {
		return [32]byte{}, fmt.Errorf("validAfter: %w", err)
	}
	before, err := eip712.EncodeUint256(a.ValidBefore)
	if err != nil {
		return [32]byte{}, fmt.Errorf("validBefore: %w", err)
	}
	return eip712.HashStruct(transferWithAuthorizationTypeHash,
		eip712.EncodeAddress(a.From),
		eip712.EncodeAddress(a.To),
		value,
		after,
		before,
		a.Nonce,
	), nil
}

// Digest returns the EIP-712 hash that From signs: the digest of a's struct
// hash in domain, the token's domain (see TokenDomain).
func Digest(domain eip712.Domain, a Authorization) ([32]byte, error) {
	sep, err := domain.Separator()
	if err != nil {
		return [32]byte{}, err
	}
	h, err := StructHash(a)
	if err != nil {
		return [32]byte{}, err
	}
	return eip712.Digest(sep, h), nil
}

// Verify checks that sig, a 65-byte r‖s‖v signature, is a.From's
// signature of a in domain.
//
// It accepts only what the token contract's ECRecover accepts: v 27 or 28
// (not 0 or 1) and s in the lower half of the curve order (EIP-2); any
// other shape is evm.ErrMalformed, since it could not be settled. A
// well-formed signature by a key other than From's is
// evm.ErrSignatureMismatch; so is one over another domain or message, as
// it recovers to another address.
func Verify(domain eip712.Domain, a Authorization, sig []byte) error {
	if len(sig) != evm.SignatureLen {
		return fmt.Errorf("%w: signature is %d bytes, want %d", evm.ErrMalformed, len(sig), evm.SignatureLen)
	}
	if v := sig[evm.SignatureLen-1]; v != 27 && v != 28 {
		return fmt.Errorf("%w: signature v is %d, the token contract wants 27 or 28", evm.ErrMalformed, v)
	}
	digest, err := Digest(domain, a)
	if err != nil {
		return err
	}
	signer, err := evm.RecoverAddress(digest, sig)
	if err != nil {
		return err
	}
	if signer != a.From {
		return fmt.Errorf("%w: signed by %s, not from %s", evm.ErrSignatureMismatch, signer, a.From)
	}
	return nil
}

// Sign returns key's 65-byte r‖s‖v signature of a in domain, with v 27 or
// 28 and a low s, as Ethereum wallets make it. The signature is
// deterministic (RFC 6979), so it is the one ethers makes with the same
// key. Sign does not check that a.From is key's address.
func Sign(key *secp256k1.PrivateKey, domain eip712.Domain, a Authorization) ([]byte, error) {
	if key == nil || key.Key.IsZero() {
		return nil, fmt.Errorf("%w: no private key", eip712.ErrInvalid)
	}
	digest, err := Digest(domain, a)
	if err != nil {
		return nil, err
	}
	// decred's compact form is [27 + recovery id] ‖ r ‖ s, low s, for an
	// uncompressed key.
	compact := ecdsa.SignCompact(key, digest[:], false)
	sig := make([]byte, evm.SignatureLen)
	copy(sig, compact[1:])
	sig[evm.SignatureLen-1] = compact[0]
	return sig, nil
}

// TokenDomain returns the EIP-712 domain of an EIP-3009 token contract:
// EIP712Domain(string name,string version,uint256 chainId,address
// verifyingContract), with the token's address as the verifying contract.
//
// For x402's exact scheme, name and version are the payment requirement's
// extra.name and extra.version, chainID that of its network, and token its
// asset. They must be exactly the contract's: USDC is "USD Coin" version
// "2" on Base (8453) but "USDC" version "2" on Base Sepolia (84532); a
// wrong one makes every signature recover to another address.
func TokenDomain(name, version string, chainID uint64, token evm.Address) eip712.Domain {
	return eip712.Domain{
		Fields:            eip712.DomainName | eip712.DomainVersion | eip712.DomainChainID | eip712.DomainVerifyingContract,
		Name:              name,
		Version:           version,
		ChainID:           new(big.Int).SetUint64(chainID),
		VerifyingContract: token,
	}
}
