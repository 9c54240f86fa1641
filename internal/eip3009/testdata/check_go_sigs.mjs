// Checks with ethers that the signatures made by this package's Sign
// verify: for each case that TestGoSignatures writes, ethers computes the
// same digest and verifyTypedData recovers the message's "from". Run by
// hand (go test does not need node), where ethers@6 is installed:
//
//   cd /tmp/eip3009gen    # see gen_vectors.mjs
//   (cd .../tollgate && go test ./internal/eip3009 -run TestGoSignatures -args -go-sigs=/tmp/eip3009gen/go_sigs.json)
//   cp .../internal/eip3009/testdata/check_go_sigs.mjs . && node check_go_sigs.mjs go_sigs.json
//
// It prints the number of cases checked and exits 1 on any disagreement.
import { readFileSync } from "node:fs";
import { TypedDataEncoder, verifyTypedData, getAddress, Signature } from "ethers";

const types = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
};

const { cases } = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const c of cases) {
  const problems = [];
  const digest = TypedDataEncoder.hash(c.domain, types, c.message);
  if (digest !== c.digest) problems.push(`digest ${c.digest}, ethers ${digest}`);
  const sig = Signature.from(c.signature); // throws on a high s
  if (sig.v !== 27 && sig.v !== 28) problems.push(`v ${sig.v}`);
  const signer = verifyTypedData(c.domain, types, c.message, c.signature);
  if (signer !== getAddress(c.message.from)) problems.push(`ethers recovers ${signer}, not ${c.message.from}`);
  if (problems.length) {
    failed++;
    console.log(`${c.name}: ${problems.join("; ")}`);
  }
}
console.log(`${cases.length - failed} of ${cases.length} Go signatures verify in ethers`);
process.exit(failed || cases.length === 0 ? 1 : 0);
