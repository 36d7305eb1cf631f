using System.Text;
using Matrix.Federation.Crypto;

namespace Matrix.Federation.Tests;

/// <summary>The appendix's signing test vectors ("Signing details"): seed, and the signature of the empty object.</summary>
public sealed class Ed25519Tests
{
    private const string SpecSeed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";

    private static Ed25519KeyPair SpecKey()
    {
        Assert.True(UnpaddedBase64.TryDecode(SpecSeed, out var seed));
        return Ed25519KeyPair.FromSeed("1", seed);
    }

    [Fact]
    public void Signature_of_the_empty_object_matches_the_spec_vector()
    {
        var key = SpecKey();
        Assert.Equal("ed25519:1", key.KeyId);
        var signature = UnpaddedBase64.Encode(key.Sign("{}"u8));
        Assert.Equal("K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ", signature);
    }

    [Fact]
    public void Signature_of_the_spec_example_object_matches_the_spec_vector()
    {
        var signature = UnpaddedBase64.Encode(SpecKey().Sign("""{"one":1,"two":"Two"}"""u8));
        Assert.Equal("KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw", signature);
    }

    [Fact]
    public void Verify_accepts_the_signed_message_and_rejects_any_change()
    {
        var key = Ed25519KeyPair.Generate("test");
        var message = Encoding.UTF8.GetBytes("hello");
        var signature = key.Sign(message);
        Assert.True(Ed25519KeyPair.Verify(key.PublicKey, message, signature));
        Assert.False(Ed25519KeyPair.Verify(key.PublicKey, "hellO"u8, signature));
        signature[0] ^= 1;
        Assert.False(Ed25519KeyPair.Verify(key.PublicKey, message, signature));
        Assert.False(Ed25519KeyPair.Verify(key.PublicKey[..31], message, signature));
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad-version")]
    public void Key_versions_are_restricted(string version)
    {
        Assert.Throws<ArgumentException>(() => Ed25519KeyPair.Generate(version));
    }

    [Fact]
    public void Unpadded_base64_round_trips_in_both_alphabets()
    {
        byte[] data = [0xfb, 0xff, 0xfe, 0x01];
        Assert.Equal("+//+AQ", UnpaddedBase64.Encode(data));
        Assert.Equal("-__-AQ", UnpaddedBase64.EncodeUrlSafe(data));
        Assert.True(UnpaddedBase64.TryDecode("+//+AQ", out var standard));
        Assert.True(UnpaddedBase64.TryDecode("-__-AQ", out var urlSafe));
        Assert.Equal(data, standard);
        Assert.Equal(data, urlSafe);
        Assert.False(UnpaddedBase64.TryDecode("a", out _));
        Assert.False(UnpaddedBase64.TryDecode("!!!!", out _));
    }
}
