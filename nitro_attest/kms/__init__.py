"""Evaluate an AWS KMS key policy against a verified attestation document, as KMS would.

:func:`evaluate` answers "would KMS let this enclave (or NitroTPM instance)
use the key?" before the policy is deployed: it parses the key policy
(:func:`parse_key_policy`, which raises :class:`KmsPolicyError` for anything
KMS would refuse or this module cannot read; JSON text, a mapping or a
:class:`pathlib.Path`), evaluates every statement for one action with IAM's
rules, and returns a :class:`KmsDecision` whose ``reasons`` say, statement by
statement and condition by condition, what matched and what did not.

What is evaluated, and how (IAM semantics, sources below):

- **Effect.** An explicit ``Deny`` that applies wins; otherwise an ``Allow``
  that applies allows; otherwise the request is implicitly denied [1].
- **Action / NotAction**: case-insensitive, with the wildcards ``*`` and ``?``.
- **Principal / NotPrincipal**: evaluated only when ``principal`` (the
  caller's ARN) is given; otherwise assumed to match, and ``reasons`` say so.
  ``"*"`` matches everyone; an ARN matches itself, and a role ARN matches
  that role's ``sts`` assumed-role sessions. IAM allows ``*`` only as the whole
  value [6]. An account (``"111122223333"`` or ``arn:aws:iam::111122223333:root``)
  hands the decision to that account's IAM policies, which we cannot see.
- **Resource / NotResource** are not evaluated: a key policy governs its own
  key, so the resource is assumed to be the key.
- **Condition**: the operators ``StringEquals``, ``StringNotEquals``,
  ``StringEqualsIgnoreCase``, ``StringNotEqualsIgnoreCase``, ``StringLike``,
  ``StringNotLike`` (each also as ``...IfExists``) and ``Null`` are evaluated
  on the attestation keys. Several operators, and several keys in one
  operator, must all hold (AND); several values of one key are alternatives
  (OR), and for a negated operator none may match (NOR) [4]. A key absent from
  the request makes a positive operator false and a negated one true;
  ``...IfExists`` is true when the key is absent; ``Null: {key: "true"}`` is
  true exactly when the key is absent [2]. Condition key names are
  case-insensitive; values follow the operator [3].
- **Set operators** ``ForAnyValue:`` / ``ForAllValues:`` are evaluated
  faithfully, the attestation keys being single-valued (a set of one value,
  or the empty set when absent): with the key present they mean the plain
  operator; with it absent ``ForAnyValue`` is false and ``ForAllValues`` is
  true [5]. AWS advises against them on single-valued keys, and ``reasons``
  repeat the warning.

The attestation keys: for a Nitro Enclaves document (from
:func:`nitro_attest.verify`) [7], ``kms:RecipientAttestation:ImageSha384`` is
PCR0 and ``kms:RecipientAttestation:PCR<n>`` is PCR ``n`` (0..31); for a
NitroTPM document (from :func:`~nitro_attest.nitrotpm.verify_nitrotpm`) [8],
``kms:RecipientAttestation:NitroTPMPCR<n>`` is TPM PCR ``n``. Each kind's keys
are "effective only when the Recipient parameter specifies" a document of
that kind, so the other kind's keys are absent from the request: a statement
that pins ``NitroTPMPCR4`` never allows an enclave, and one that pins
``ImageSha384`` never allows an instance's TPM. Their value in the
request is the document's PCR as 96 **lower-case** hex digits: KMS documents
PCR values as "a lower-case hexadecimal string" [8] and compares them as
strings, so with the case-sensitive ``StringEquals``/``StringLike`` an
upper-case value in the policy never matches (``reasons`` then point out that
it would match ignoring case); ``StringEqualsIgnoreCase``, which AWS's own
examples use, matches either case. KMS puts these keys in the request only
for the operations that take a ``Recipient`` attestation document
(:data:`ATTESTED_ACTIONS`) [7]; for any other action (``kms:Encrypt``...) they
are absent. A PCR index the document lacks (e.g. PCR16 on most documents) is
an absent key too.

**Conditions we cannot evaluate.** Any other key (``aws:SourceIp``,
``kms:ViaService``, ``kms:EncryptionContext:...``, ``kms:CallerAccount``...),
a non-string operator
(``Bool``, ``IpAddress``, ``Numeric...``) or a value with a policy variable
(``${...}``) has an unknown result. Each such key is listed in
``KmsDecision.unevaluated`` and never assumed true or false: conditions are
combined in three-valued logic (false AND unknown is false; true AND unknown is
unknown), and the decision is conservative, so that we never say "allowed"
when KMS could deny:

- an ``Allow`` whose result is unknown does not allow;
- a ``Deny`` whose result is unknown blocks: the decision is not allowed,
  and ``reasons`` say that the deny *may* apply.

The same holds for a principal we cannot judge (an account principal on an
``Allow``, a ``NotPrincipal`` naming the caller's role or account).

**Where** :func:`nitro_attest.verify` **is stricter than KMS.** KMS checks
that the document is genuine, then evaluates the key policy on its PCRs. It
does not reject debug-mode enclaves (their PCR0-2 are zero: a policy that pins
zeros accepts them), does not bound the document's age (``max_age``), and does
not check a nonce or user data. ``verify`` does all of that by policy, so a
document that ``verify`` rejects may still be accepted by KMS.

**Allowed, and would it succeed.** ``KmsDecision.allowed`` is the key
policy's verdict only. For the attested operations KMS also encrypts its
answer (``CiphertextForRecipient``) to the document's ``public_key`` with
RSAES_OAEP_SHA_256, its only recipient algorithm, so a document without a
DER RSA public key gets an error, not the secret, whatever the policy says.
``KmsDecision.obstacles`` lists such reasons, the last line of ``reasons``
says "allowed by ..., but the request would fail: ..." rather than
"allowed" alone, and ``KmsDecision.would_succeed`` (allowed and no obstacle)
is the answer to "will the enclave get its secret?".

Sources (AWS documentation):

- [1] IAM, "The difference between explicit and implicit denies",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html>
- [2] IAM, "IAM JSON policy elements: Condition operators",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>
- [3] IAM, "IAM JSON policy elements: Condition",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html>
- [4] IAM, "Conditions with multiple context keys or values",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html>
- [5] IAM, "Single-valued vs. multivalued context keys",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html>
- [6] IAM, "AWS JSON policy elements: Principal",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>
- [7] KMS, "Condition keys for Nitro Enclaves",
  <https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclave.html>
- [8] KMS, "Condition keys for NitroTPM",
  <https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-tpm.html>
- [9] KMS, "Creating a key policy" (format: 32 KB, characters, required elements),
  <https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html>
"""

from ._evaluation import evaluate
from ._key_policy import (
    ATTESTED_ACTIONS,
    IMAGE_SHA384_KEY,
    NITROTPM_PCR_KEY_PREFIX,
    Condition,
    Effect,
    KeyPolicy,
    KmsDecision,
    KmsPolicyError,
    Qualifier,
    Statement,
    parse_key_policy,
)
from ._pcr_pins import attestation_condition, key_policy_pcr_constraints, pcr_constraints

__all__ = [
    "ATTESTED_ACTIONS",
    "IMAGE_SHA384_KEY",
    "NITROTPM_PCR_KEY_PREFIX",
    "Condition",
    "Effect",
    "KeyPolicy",
    "KmsDecision",
    "KmsPolicyError",
    "Qualifier",
    "Statement",
    "attestation_condition",
    "evaluate",
    "key_policy_pcr_constraints",
    "parse_key_policy",
    "pcr_constraints",
]
