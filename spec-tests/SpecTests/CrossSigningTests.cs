using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Cross-signing" (<c>keys/device_signing/upload</c>, <c>keys/signatures/upload</c>) with real Ed25519 signatures.</summary>
public abstract class CrossSigningTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private async Task<TestDevice> DeviceWithKeysAsync()
    {
        var device = new TestDevice(await C.RegisterAsync());
        Assert.Equal(200, (await device.UploadAsync(C)).Status);
        return device;
    }

    private Task<MatrixResponse> UploadCrossSigningAsync(TestDevice device, JsonObject keys) =>
        C.PostAsync($"{V3}/keys/device_signing/upload", keys.ToJsonString(), device.User.AccessToken);

    private Task<MatrixResponse> QueryAsync(LoggedInUser by, string userId) =>
        C.PostAsync($"{V3}/keys/query", new { device_keys = new Dictionary<string, string[]> { [userId] = [] } }, by.AccessToken);

    [Fact]
    public async Task First_upload_needs_no_auth_the_same_keys_again_neither_and_replacing_them_needs_the_password()
    {
        var alice = await DeviceWithKeysAsync();
        var bob = await DeviceWithKeysAsync();
        var keys = alice.CreateCrossSigningKeys();
        Assert.Equal(200, (await UploadCrossSigningAsync(alice, keys)).Status);
        Assert.Equal(200, (await UploadCrossSigningAsync(alice, (JsonObject)keys.DeepClone())).Status);

        var seenByBob = await QueryAsync(bob.User, alice.User.UserId);
        Assert.Equal(alice.Master!.PublicKeyBase64, seenByBob.Body!["master_keys"]![alice.User.UserId]!["keys"]!.AsObject().Single().Value!.GetValue<string>());
        Assert.NotNull(seenByBob.Body!["self_signing_keys"]![alice.User.UserId]);
        Assert.Null(seenByBob.Body!["user_signing_keys"]![alice.User.UserId]);
        Assert.NotNull((await QueryAsync(alice.User, alice.User.UserId)).Body!["user_signing_keys"]![alice.User.UserId]);

        var replacement = alice.CreateCrossSigningKeys();
        var challenged = await UploadCrossSigningAsync(alice, replacement);
        Assert.Equal(401, challenged.Status);
        Assert.NotNull(challenged.Body!["flows"]);
        var done = await C.WithPasswordAuthAsync(HttpMethod.Post, $"{V3}/keys/device_signing/upload", replacement, alice.User);
        Assert.Equal(200, done.Status);
        var master = (await QueryAsync(bob.User, alice.User.UserId)).Body!["master_keys"]![alice.User.UserId]!;
        Assert.Equal(alice.Master.PublicKeyBase64, master["keys"]!.AsObject().Single().Value!.GetValue<string>());
    }

    [Fact]
    public async Task The_unstable_path_Element_still_probes_uploads_the_keys_too()
    {
        var alice = await DeviceWithKeysAsync();
        var upload = await C.PostAsync("/_matrix/client/unstable/keys/device_signing/upload", alice.CreateCrossSigningKeys().ToJsonString(), alice.User.AccessToken);
        Assert.Equal(200, upload.Status);
        Assert.Equal(alice.Master!.PublicKeyBase64,
            (await QueryAsync(alice.User, alice.User.UserId)).Body!["master_keys"]![alice.User.UserId]!["keys"]!.AsObject().Single().Value!.GetValue<string>());
    }

    [Fact]
    public async Task A_new_user_signing_key_is_told_to_its_owner_alone()
    {
        var alice = await DeviceWithKeysAsync();
        var bob = await DeviceWithKeysAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice.User, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, bob.User.AccessToken)).Status);
        Assert.Equal(200, (await UploadCrossSigningAsync(alice, alice.CreateCrossSigningKeys())).Status);
        var bobSince = (await SyncTests.SyncAsync(C, bob.User))["next_batch"]!.GetValue<string>();
        var aliceSince = (await SyncTests.SyncAsync(C, alice.User))["next_batch"]!.GetValue<string>();

        var userSigning = Ed25519KeyPair.Generate("u2");
        var replaced = await C.WithPasswordAuthAsync(HttpMethod.Post, $"{V3}/keys/device_signing/upload",
            new JsonObject { ["user_signing_key"] = alice.CrossSigningKey(userSigning, "user_signing", alice.Master) }, alice.User);
        Assert.Equal(200, replaced.Status);

        var ownSync = await SyncTests.SyncAsync(C, alice.User, aliceSince);
        Assert.Contains(alice.User.UserId, ownSync["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
        var bobSync = await SyncTests.SyncAsync(C, bob.User, bobSince);
        Assert.DoesNotContain(alice.User.UserId, bobSync["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
    }

    [Fact]
    public async Task Malformed_or_badly_signed_cross_signing_keys_are_refused()
    {
        var alice = await DeviceWithKeysAsync();
        var keys = alice.CreateCrossSigningKeys();
        var unsigned = (JsonObject)keys.DeepClone();
        unsigned["self_signing_key"]!.AsObject().Remove("signatures");
        Assert.Equal("M_INVALID_SIGNATURE", (await UploadCrossSigningAsync(alice, unsigned)).Errcode);

        var wrongUsage = (JsonObject)keys.DeepClone();
        wrongUsage["master_key"]!["usage"] = new JsonArray("self_signing");
        Assert.Equal("M_INVALID_PARAM", (await UploadCrossSigningAsync(alice, wrongUsage)).Errcode);

        var wrongUser = (JsonObject)keys.DeepClone();
        wrongUser["master_key"]!["user_id"] = "@someone:else";
        Assert.Equal("M_INVALID_PARAM", (await UploadCrossSigningAsync(alice, wrongUser)).Errcode);

        var badKeyId = (JsonObject)keys.DeepClone();
        badKeyId["master_key"]!["keys"] = new JsonObject { ["ed25519:other"] = alice.Master!.PublicKeyBase64 };
        Assert.Equal("M_INVALID_PARAM", (await UploadCrossSigningAsync(alice, badKeyId)).Errcode);

        var withoutMaster = new JsonObject { ["self_signing_key"] = keys["self_signing_key"]!.DeepClone() };
        Assert.Equal("M_INVALID_PARAM", (await UploadCrossSigningAsync(alice, withoutMaster)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V3}/keys/device_signing/upload", new { master_key = "x" }, alice.User.AccessToken)).Errcode);

        // None of it was stored: the first real upload still needs no password.
        Assert.Empty((await QueryAsync(alice.User, alice.User.UserId)).Body!["master_keys"]!.AsObject());
        Assert.Equal(200, (await UploadCrossSigningAsync(alice, keys)).Status);
    }

    [Fact]
    public async Task Signatures_that_verify_are_published_and_the_rest_are_listed_as_failures()
    {
        var alice = await DeviceWithKeysAsync();
        var bob = await DeviceWithKeysAsync();
        Assert.Equal(200, (await UploadCrossSigningAsync(alice, alice.CreateCrossSigningKeys())).Status);
        Assert.Equal(200, (await UploadCrossSigningAsync(bob, bob.CreateCrossSigningKeys())).Status);

        // Alice's self-signing key signs her device; her device signs her master key.
        var device = alice.DeviceKeys();
        device.Remove("signatures");
        alice.SignAs(device, alice.SelfSigning!);
        var masterKey = alice.CrossSigningKey(alice.Master!, "master", signer: null);
        JsonSigning.Sign(masterKey, alice.User.UserId, alice.DeviceKey);
        // Alice's user-signing key signs Bob's master key.
        var bobMaster = bob.CrossSigningKey(bob.Master!, "master", signer: null);
        var bobMasterSignedByAlice = (JsonObject)bobMaster.DeepClone();
        alice.SignAs(bobMasterSignedByAlice, alice.UserSigning!);

        var upload = await C.PostAsync($"{V3}/keys/signatures/upload", new JsonObject
        {
            [alice.User.UserId] = new JsonObject { [alice.User.DeviceId] = device, [alice.Master!.PublicKeyBase64] = masterKey },
            [bob.User.UserId] = new JsonObject { [bob.Master!.PublicKeyBase64] = bobMasterSignedByAlice },
        }.ToJsonString(), alice.User.AccessToken);
        Assert.True(upload.Status == 200, upload.ToString());
        Assert.True(upload.Body!["failures"]!.AsObject().Count == 0, upload.ToString());

        var seenByBob = await QueryAsync(bob.User, alice.User.UserId);
        var deviceSignatures = seenByBob.Body!["device_keys"]![alice.User.UserId]![alice.User.DeviceId]!["signatures"]![alice.User.UserId]!.AsObject();
        Assert.Contains("ed25519:" + alice.SelfSigning!.PublicKeyBase64, deviceSignatures.Select(p => p.Key));
        Assert.Contains("ed25519:" + alice.User.DeviceId,
            seenByBob.Body!["master_keys"]![alice.User.UserId]!["signatures"]![alice.User.UserId]!.AsObject().Select(p => p.Key));
        // Alice's signature of Bob's master key is her own business.
        Assert.NotNull((await QueryAsync(alice.User, bob.User.UserId)).Body!["master_keys"]![bob.User.UserId]!["signatures"]![alice.User.UserId]);
        Assert.Null((await QueryAsync(bob.User, bob.User.UserId)).Body!["master_keys"]![bob.User.UserId]!["signatures"]?[alice.User.UserId]);

        // A forged signature, a key that differs from the published one, and an unknown key are failures.
        var forged = alice.DeviceKeys();
        forged.Remove("signatures");
        var forger = Ed25519KeyPair.Generate("x");
        var signature = UnpaddedBase64.Encode(forger.Sign(JsonSigning.SigningBytes(forged)));
        forged["signatures"] = new JsonObject { [alice.User.UserId] = new JsonObject { ["ed25519:" + alice.SelfSigning.PublicKeyBase64] = signature } };
        var altered = (JsonObject)bobMasterSignedByAlice.DeepClone();
        altered["usage"]!.AsArray().Add("extra");
        var failed = await C.PostAsync($"{V3}/keys/signatures/upload", new JsonObject
        {
            [alice.User.UserId] = new JsonObject { [alice.User.DeviceId] = forged, ["UNKNOWN"] = new JsonObject() },
            [bob.User.UserId] = new JsonObject { [bob.Master.PublicKeyBase64] = altered },
        }.ToJsonString(), alice.User.AccessToken);
        Assert.Equal(200, failed.Status);
        Assert.Equal("M_INVALID_SIGNATURE", failed.Body!["failures"]![alice.User.UserId]![alice.User.DeviceId]!["errcode"]!.GetValue<string>());
        Assert.NotNull(failed.Body!["failures"]![alice.User.UserId]!["UNKNOWN"]);
        Assert.Equal("M_INVALID_SIGNATURE", failed.Body!["failures"]![bob.User.UserId]![bob.Master.PublicKeyBase64]!["errcode"]!.GetValue<string>());
    }
}

public sealed class CrossSigningTestsSqlite(SqliteServer f) : CrossSigningTests(f), IClassFixture<SqliteServer>;
public sealed class CrossSigningTestsPostgres(PostgresServer f) : CrossSigningTests(f), IClassFixture<PostgresServer>;
