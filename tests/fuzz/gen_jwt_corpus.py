#!/usr/bin/python3
"""Writes the seed corpus of fuzz_jwt_verify (tests/fuzz/corpus/fuzz_jwt_verify/).

The tokens are signed with FUZZ_SECRET, the fixed test value that
fuzz_jwt_verify.c verifies with; it protects nothing. Times are around
FUZZ_NOW = 1700000000. Run from anywhere: /usr/bin/python3 gen_jwt_corpus.py
"""
import base64
import hashlib
import hmac
import os

SECRET = b"fuzz-corpus-test-secret-not-used-anywhere-0123"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_jwt_verify")
STD_HEADER = '{"alg":"HS256","typ":"JWT"}'
STD_PAYLOAD = ('{"sub":"alice","user_id":"alice","role":"admin","iss":"product-service",'
               '"aud":"client","iat":1700000000,"nbf":1700000000,"exp":1700003600}')


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(header: str, payload: str, digest=hashlib.sha256, secret=SECRET) -> str:
    signing_input = b64(header.encode()) + "." + b64(payload.encode())
    sig = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64(sig)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    valid = token(STD_HEADER, STD_PAYLOAD)
    seeds = {
        "valid": valid,
        "valid_aud_array": token(STD_HEADER, STD_PAYLOAD.replace('"client"', '["x","client"]')),
        "valid_no_role": token(STD_HEADER, STD_PAYLOAD.replace('"role":"admin",', "")),
        "expired": token(STD_HEADER, STD_PAYLOAD.replace("1700003600", "1699990000")),
        "exp_string": token(STD_HEADER, STD_PAYLOAD.replace("1700003600", '"1700003600"')),
        "exp_real": token(STD_HEADER, STD_PAYLOAD.replace("1700003600", "1700003600.0")),
        "wrong_issuer": token(STD_HEADER, STD_PAYLOAD.replace("product-service", "evil")),
        "sub_empty": token(STD_HEADER, STD_PAYLOAD.replace('"sub":"alice"', '"sub":""')),
        "alg_none": b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(STD_PAYLOAD.encode()) + ".",
        "alg_NONE_signed": token('{"alg":"NONE"}', STD_PAYLOAD),
        "alg_hs512": token('{"alg":"HS512","typ":"JWT"}', STD_PAYLOAD, hashlib.sha512),
        "alg_rs256": token('{"alg":"RS256","typ":"JWT"}', STD_PAYLOAD),
        "crit": token('{"alg":"HS256","crit":["exp"],"exp":1}', STD_PAYLOAD),
        "dup_alg": token('{"alg":"HS256","alg":"none"}', STD_PAYLOAD),
        "wrong_secret": token(STD_HEADER, STD_PAYLOAD, secret=b"x" * 32),
        "padded": valid + "=",
        "four_segments": valid + ".AAAA",
        "two_segments": valid.rsplit(".", 1)[0],
        "whitespace": valid[:20] + " " + valid[20:],
        "nul_inside": valid[:30] + "\0" + valid[30:],
        "std_alphabet": valid.replace("-", "+").replace("_", "/"),
        # signed claims for the harness to encode (see fuzz_jwt_verify.c)
        "sign_valid": "SIGN:" + STD_HEADER + "\n" + STD_PAYLOAD,
        "sign_nested": "SIGN:" + STD_HEADER + "\n" + STD_PAYLOAD[:-1]
        + ',"x":{"a":[1,2.5,true,null,"\\u00e9"]}}',
        "sign_big_numbers": "SIGN:" + STD_HEADER + "\n"
        + STD_PAYLOAD.replace("1700003600", "9223372036854775807")
        .replace('"nbf":1700000000', '"nbf":-9223372036854775808'),
    }
    for name, value in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(value.encode("latin-1"))


if __name__ == "__main__":
    main()
