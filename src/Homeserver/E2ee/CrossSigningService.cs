using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Json;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Cross-signing: uploading the master, self-signing and user-signing keys (each checked: shape, usage, signed by the
/// master key), and uploading signatures of one's own devices and master key or of other users' master keys; a
/// signature is stored only when it verifies.
/// </summary>
public sealed class CrossSigningService(
    Database db, CrossSigningStore store, DeviceListStore deviceLists, DeviceListService deviceListService,
    KeyService keyService, UserInteractiveAuth uia, Accounts.OAuth.CrossSigningResets resets)
{
    private sealed record NewKey(string Type, string PublicKey, JsonObject Json);

    /// <summary><c>keys/device_signing/upload</c>: UIA is needed only to replace keys that exist (the spec's v1.11 rule).</summary>
    public async Task UploadKeysAsync(HttpContext context, Requester requester, JsonElement body, bool isAppService)
    {
        var ct = context.RequestAborted;
        var userId = requester.UserId.Value;
        var existing = (await db.ReadAsync(s => store.ForUsersAsync(s, [userId]), ct)).ToDictionary(k => k.KeyType);
        var master = ParseKey(body, "master_key", userId, CrossSigningStore.Master);
        var selfSigning = ParseKey(body, "self_signing_key", userId, CrossSigningStore.SelfSigning);
        var userSigning = ParseKey(body, "user_signing_key", userId, CrossSigningStore.UserSigning);
        var masterPublicKey = master?.PublicKey ?? existing.GetValueOrDefault(CrossSigningStore.Master)?.PublicKey
            ?? throw MatrixException.InvalidParam("A master_key is needed: none has been uploaded yet.");
        foreach (var key in new[] { selfSigning, userSigning }.OfType<NewKey>())
            if (!KeyObjects.IsSignedBy(key.Json, userId, "ed25519:" + masterPublicKey, masterPublicKey))
                throw new MatrixException(400, "M_INVALID_SIGNATURE", $"The {key.Type} key is not signed by the master key.");

        var uploaded = new[] { master, selfSigning, userSigning }.OfType<NewKey>().ToList();
        var changes = uploaded.Where(k => existing.GetValueOrDefault(k.Type) is not { } old
            || KeyObjects.SignedPart(JsonNode.Parse(old.KeyJson)!.AsObject()) != KeyObjects.SignedPart(k.Json)).ToList();
        UiaResult? authorisation = null;
        if (existing.ContainsKey(CrossSigningStore.Master) && changes.Count > 0 && !isAppService)
            authorisation = await resets.AuthoriseAsync(context, body, requester);
        if (changes.Count == 0)
            return;
        // Spec: others are told of new master and self-signing keys; a user-signing key concerns its owner alone.
        var ownerOnly = changes.All(k => k.Type == CrossSigningStore.UserSigning);

        await db.WriteAsync(async s =>
        {
            if (authorisation is not null)
                await uia.FinishAsync(s, authorisation);
            foreach (var key in changes)
            {
                if (existing.GetValueOrDefault(key.Type) is { } old)
                    await store.DeleteSignaturesByAsync(s, userId, "ed25519:" + old.PublicKey);
                await store.SetAsync(s, userId, key.Type, key.PublicKey, key.Json.ToJsonString());
            }
            await deviceLists.AddChangeAsync(s, userId, ownerOnly);
        }, ct);
        await deviceListService.PublishCrossSigningChangeAsync(userId, ct, ownerOnly);
    }

    private static NewKey? ParseKey(JsonElement body, string name, string userId, string usage)
    {
        if (body.OptionalObject(name) is not { } element)
            return null;
        var json = KeyObjects.ToObject(element, name);
        json.Remove("unsigned");
        return new NewKey(usage, KeyObjects.CrossSigningPublicKey(json, userId, usage, name), json);
    }

    /// <summary>
    /// <c>keys/signatures/upload</c>: per signed key, the new signatures by the requester are checked and stored, or the
    /// key is listed in <c>failures</c>.
    /// </summary>
    public async Task<JsonObject> UploadSignaturesAsync(Requester requester, JsonElement body, CancellationToken ct)
    {
        var signer = requester.UserId.Value;
        var failures = new JsonObject();
        var accepted = new List<KeySignatureRow>();
        var targets = body.EnumerateObject().Take(KeyService.MaxUsersPerRequest).ToList();
        var query = targets.ToDictionary(t => t.Name, _ => new List<string>());
        var published = await keyService.QueryAsync(signer, query, KeyService.DefaultRemoteTimeoutMs, ct);
        var signerKeys = (await db.ReadAsync(s => store.ForUsersAsync(s, [signer]), ct)).ToDictionary(k => k.KeyType, k => k.PublicKey);

        foreach (var target in targets)
        {
            if (target.Value.ValueKind != JsonValueKind.Object)
                throw MatrixException.BadJson($"'{target.Name}' must map key IDs to signed keys.");
            foreach (var signed in target.Value.EnumerateObject())
            {
                if (signed.Value.ValueKind != JsonValueKind.Object)
                    throw MatrixException.BadJson($"'{target.Name}.{signed.Name}' must be a signed key object.");
                var (rows, error) = CheckSignatures(signer, target.Name, signed.Name, KeyObjects.ToObject(signed.Value, signed.Name), published, signerKeys);
                if (error is not null)
                {
                    if (failures[target.Name] is not JsonObject forUser)
                        failures[target.Name] = forUser = new JsonObject();
                    forUser[signed.Name] = new JsonObject { ["errcode"] = error.Value.Errcode, ["error"] = error.Value.Message };
                }
                else
                    accepted.AddRange(rows);
            }
        }

        if (accepted.Count > 0)
        {
            var ownDeviceChanges = new List<(string DeviceId, long StreamId)>();
            await db.WriteAsync(async s =>
            {
                foreach (var row in accepted)
                    await store.AddSignatureAsync(s, row);
                foreach (var user in accepted.Select(r => r.UserId).Distinct())
                    if (user == signer)
                        foreach (var device in accepted.Where(r => r.UserId == signer).Select(r => r.TargetKeyId).Distinct())
                            ownDeviceChanges.Add((device, await deviceLists.AddChangeAsync(s, signer)));
                    else
                        // The signer's other devices learn of their new trust in that user through the device-list stream.
                        await deviceLists.AddChangeAsync(s, user);
            }, ct);
            // Signatures of devices go out as device-list updates; a new signature of the master key as a signing-key update.
            var masterKey = signerKeys.GetValueOrDefault(CrossSigningStore.Master);
            await deviceListService.PublishDeviceChangesAsync(signer, ownDeviceChanges.Where(c => c.DeviceId != masterKey).ToList(), ct);
            if (ownDeviceChanges.Any(c => c.DeviceId == masterKey))
                await deviceListService.PublishCrossSigningChangeAsync(signer, ct);
        }
        return new JsonObject { ["failures"] = failures };
    }

    /// <summary>The signatures by <paramref name="signer"/> on one key that verify, or why the key is refused.</summary>
    private static (List<KeySignatureRow> Rows, (string Errcode, string Message)? Error) CheckSignatures(string signer, string targetUser,
        string keyId, JsonObject signed, JsonObject published, Dictionary<string, string> signerKeys)
    {
        var isOwn = targetUser == signer;
        JsonObject? stored = null;
        string[] signingKeyIds;
        if (published["master_keys"]?[targetUser] is JsonObject master && MasterPublicKey(master) == keyId)
        {
            stored = master;
            // Own master key: signed by one of the signer's devices. Another user's: by the signer's user-signing key.
            signingKeyIds = isOwn
                ? (published["device_keys"]?[signer] as JsonObject ?? []).Select(d => "ed25519:" + d.Key).ToArray()
                : signerKeys.TryGetValue(CrossSigningStore.UserSigning, out var usk) ? ["ed25519:" + usk] : [];
        }
        else if (isOwn && published["device_keys"]?[signer]?[keyId] is JsonObject device)
        {
            stored = device;
            signingKeyIds = signerKeys.TryGetValue(CrossSigningStore.SelfSigning, out var ssk) ? ["ed25519:" + ssk] : [];
        }
        else
            return ([], ("M_NOT_FOUND", isOwn ? "No such device or master key." : "Only another user's master key can be signed."));

        if (KeyObjects.SignedPart(stored) != KeyObjects.SignedPart(signed))
            return ([], ("M_INVALID_SIGNATURE", "The signed object differs from the published key."));
        var rows = new List<KeySignatureRow>();
        foreach (var (signingKeyId, value) in signed["signatures"]?[signer] as JsonObject ?? [])
        {
            if (!signingKeyIds.Contains(signingKeyId) || value?.AsString() is not { } signature)
                continue;
            var publicKey = signingKeyId["ed25519:".Length..];
            // A device's public key is not its ID: look it up in the signer's published device keys.
            if (published["device_keys"]?[signer]?[publicKey]?["keys"]?[signingKeyId]?.AsString() is { } deviceKey)
                publicKey = deviceKey;
            if (!KeyObjects.IsSignedBy(signed, signer, signingKeyId, publicKey))
                return ([], ("M_INVALID_SIGNATURE", $"The signature by {signingKeyId} does not verify."));
            rows.Add(new KeySignatureRow(targetUser, keyId, signer, signingKeyId, signature));
        }
        return rows.Count > 0 ? (rows, null) : ([], ("M_INVALID_SIGNATURE", "No signature by a key allowed to sign this key."));
    }

    private static string? MasterPublicKey(JsonObject master) =>
        (master["keys"] as JsonObject)?.Select(k => k.Value?.AsString()).FirstOrDefault();
}
