using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;

namespace Matrix.Federation.Tests;

/// <summary>The appendix's JSON signing vectors, verification, and server key responses with expiry.</summary>
public sealed class JsonSigningTests
{
    public static Ed25519KeyPair SpecKey()
    {
        Assert.True(UnpaddedBase64.TryDecode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", out var seed));
        return Ed25519KeyPair.FromSeed("1", seed);
    }

    [Fact]
    public void Signing_the_empty_object_gives_the_spec_output()
    {
        var obj = new JsonObject();
        JsonSigning.Sign(obj, "domain", SpecKey());
        Assert.Equal("""{"signatures":{"domain":{"ed25519:1":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}""",
            CanonicalJson.EncodeToString(obj));
    }

    [Fact]
    public void Signing_an_object_with_data_gives_the_spec_output()
    {
        var obj = new JsonObject { ["one"] = 1, ["two"] = "Two" };
        JsonSigning.Sign(obj, "domain", SpecKey());
        Assert.Equal("""{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}""",
            CanonicalJson.EncodeToString(obj));
    }

    [Fact]
    public void Verification_ignores_unsigned_and_detects_tampering()
    {
        var key = SpecKey();
        var obj = new JsonObject { ["one"] = 1, ["unsigned"] = new JsonObject { ["age_ts"] = 5 } };
        JsonSigning.Sign(obj, "domain", key);
        obj["unsigned"] = new JsonObject { ["age_ts"] = 6 };
        Assert.True(JsonSigning.Verify(obj, "domain", "ed25519:1", key.PublicKey));
        Assert.Equal(["ed25519:1"], JsonSigning.SigningKeyIds(obj, "domain"));
        obj["one"] = 2;
        Assert.False(JsonSigning.Verify(obj, "domain", "ed25519:1", key.PublicKey));
        Assert.False(JsonSigning.Verify(obj, "other", "ed25519:1", key.PublicKey));
        obj["signatures"] = "not an object";
        Assert.False(JsonSigning.Verify(obj, "domain", "ed25519:1", key.PublicKey));
    }

    [Fact]
    public void A_second_signer_keeps_the_first_signature()
    {
        var first = SpecKey();
        var second = Ed25519KeyPair.Generate("2");
        var obj = new JsonObject { ["x"] = "y" };
        JsonSigning.Sign(obj, "a.example", first);
        JsonSigning.Sign(obj, "b.example", second);
        Assert.True(JsonSigning.Verify(obj, "a.example", "ed25519:1", first.PublicKey));
        Assert.True(JsonSigning.Verify(obj, "b.example", "ed25519:2", second.PublicKey));
    }

    private static JsonObject KeyResponse(Ed25519KeyPair current, long validUntil, Ed25519KeyPair? old = null, long expiredTs = 0)
    {
        var response = new JsonObject
        {
            ["server_name"] = "example.org",
            ["valid_until_ts"] = validUntil,
            ["verify_keys"] = new JsonObject { [current.KeyId] = new JsonObject { ["key"] = current.PublicKeyBase64 } },
            ["old_verify_keys"] = old is null ? new JsonObject()
                : new JsonObject { [old.KeyId] = new JsonObject { ["key"] = old.PublicKeyBase64, ["expired_ts"] = expiredTs } },
        };
        JsonSigning.Sign(response, "example.org", current);
        return response;
    }

    [Fact]
    public void Server_keys_parse_with_validity_and_old_keys()
    {
        var current = Ed25519KeyPair.Generate("new");
        var old = Ed25519KeyPair.Generate("old");
        Assert.True(ServerKeys.TryParse(KeyResponse(current, 2_000_000, old, 1_000_000), out var keys, out var error), error);
        var now = keys.Keys["ed25519:new"];
        var previous = keys.Keys["ed25519:old"];

        Assert.True(now.IsValidAt(1_999_999, fetchedAtTs: 1_500_000, enforceValidUntil: true));
        Assert.False(now.IsValidAt(2_000_001, fetchedAtTs: 1_500_000, enforceValidUntil: true));
        Assert.True(now.IsValidAt(2_000_001, fetchedAtTs: 1_500_000, enforceValidUntil: false));
        Assert.True(previous.IsValidAt(999_999, fetchedAtTs: 1_500_000, enforceValidUntil: true));
        Assert.False(previous.IsValidAt(1_000_000, fetchedAtTs: 1_500_000, enforceValidUntil: true));
    }

    [Fact]
    public void A_far_future_valid_until_is_capped_at_seven_days_after_fetching()
    {
        var current = Ed25519KeyPair.Generate("k");
        Assert.True(ServerKeys.TryParse(KeyResponse(current, long.MaxValue / 2), out var keys, out _));
        var key = keys.Keys["ed25519:k"];
        var fetched = 1_000_000_000L;
        Assert.True(key.IsValidAt(fetched + VerifyKey.MaxTrustMs, fetched, enforceValidUntil: true));
        Assert.False(key.IsValidAt(fetched + VerifyKey.MaxTrustMs + 1, fetched, enforceValidUntil: true));
    }

    [Fact]
    public void Server_keys_with_a_forged_self_signature_are_refused()
    {
        var current = Ed25519KeyPair.Generate("k");
        var response = KeyResponse(current, 5);
        response["valid_until_ts"] = 6;
        Assert.False(ServerKeys.TryParse(response, out _, out var error));
        Assert.Contains("not signed", error);

        var other = KeyResponse(current, 5);
        other["verify_keys"] = new JsonObject { ["ed25519:k"] = new JsonObject { ["key"] = "short" } };
        Assert.False(ServerKeys.TryParse(other, out _, out _));
    }

    [Theory]
    [InlineData("@alice:example.org", "example.org", true)]
    [InlineData("@alice:example.org:8448", "example.org:8448", true)]
    [InlineData("@alice:example.org:8448", "example.org", false)]
    [InlineData("@alice:other.example.org", "example.org", false)]
    [InlineData("$event", "example.org", false)]
    [InlineData(":example.org", "example.org", false)]
    public void An_ID_is_of_a_server_exactly_when_its_server_part_is_that_server(string id, string server, bool of)
    {
        Assert.Equal(of, EventSigning.IsOf(id, server));
        Assert.Equal(of, EventSigning.ServerOf(id) == server);
    }
}
