using System.Security.Cryptography;

namespace Matrix.Federation.Crypto;

/// <summary>An Ed25519 key pair with its Matrix key ID (<c>ed25519:&lt;version&gt;</c>).</summary>
public sealed class Ed25519KeyPair
{
    private readonly byte[] _secretKey;

    public string KeyId { get; }
    public byte[] Seed { get; }
    public byte[] PublicKey { get; }

    private Ed25519KeyPair(string keyId, byte[] seed, byte[] publicKey, byte[] secretKey)
    {
        KeyId = keyId;
        Seed = seed;
        PublicKey = publicKey;
        _secretKey = secretKey;
    }

    public static Ed25519KeyPair FromSeed(string version, ReadOnlySpan<byte> seed)
    {
        if (seed.Length != LibSodium.SignSeedBytes)
            throw new ArgumentException($"an Ed25519 seed is {LibSodium.SignSeedBytes} bytes", nameof(seed));
        if (version.Length == 0 || !version.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw new ArgumentException("a key version is made of [a-zA-Z0-9_]", nameof(version));
        LibSodium.EnsureInitialised();
        var publicKey = new byte[LibSodium.SignPublicKeyBytes];
        var secretKey = new byte[LibSodium.SignSecretKeyBytes];
        if (LibSodium.crypto_sign_seed_keypair(publicKey, secretKey, seed) != 0)
            throw new CryptographicException("crypto_sign_seed_keypair failed");
        return new Ed25519KeyPair("ed25519:" + version, seed.ToArray(), publicKey, secretKey);
    }

    public static Ed25519KeyPair Generate(string version) => FromSeed(version, RandomNumberGenerator.GetBytes(LibSodium.SignSeedBytes));

    public string PublicKeyBase64 => UnpaddedBase64.Encode(PublicKey);

    public byte[] Sign(ReadOnlySpan<byte> message)
    {
        var signature = new byte[LibSodium.SignatureBytes];
        if (LibSodium.crypto_sign_detached(signature, out _, message, (ulong)message.Length, _secretKey) != 0)
            throw new CryptographicException("crypto_sign_detached failed");
        return signature;
    }

    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != LibSodium.SignPublicKeyBytes || signature.Length != LibSodium.SignatureBytes)
            return false;
        LibSodium.EnsureInitialised();
        return LibSodium.crypto_sign_verify_detached(signature, message, (ulong)message.Length, publicKey) == 0;
    }
}
