using System.Runtime.InteropServices;

namespace Matrix.Federation.Crypto;

/// <summary>The libsodium functions the server uses (Debian's libsodium23).</summary>
public static partial class LibSodium
{
    private const string Library = "libsodium.so.23";

    public const int SignPublicKeyBytes = 32;
    public const int SignSecretKeyBytes = 64;
    public const int SignSeedBytes = 32;
    public const int SignatureBytes = 64;
    public const int PasswordHashStringBytes = 128;

    private static readonly Lazy<bool> Initialised = new(() => sodium_init() >= 0);

    /// <summary>Initialises libsodium once; throws when the native library is missing or broken.</summary>
    public static void EnsureInitialised()
    {
        if (!Initialised.Value)
            throw new InvalidOperationException("libsodium failed to initialise");
    }

    [LibraryImport(Library)]
    private static partial int sodium_init();

    [LibraryImport(Library)]
    internal static partial int crypto_sign_seed_keypair(Span<byte> publicKey, Span<byte> secretKey, ReadOnlySpan<byte> seed);

    [LibraryImport(Library)]
    internal static partial int crypto_sign_detached(Span<byte> signature, out ulong signatureLength,
        ReadOnlySpan<byte> message, ulong messageLength, ReadOnlySpan<byte> secretKey);

    [LibraryImport(Library)]
    internal static partial int crypto_sign_verify_detached(ReadOnlySpan<byte> signature,
        ReadOnlySpan<byte> message, ulong messageLength, ReadOnlySpan<byte> publicKey);

    [LibraryImport(Library)]
    public static partial int crypto_pwhash_str(Span<byte> output, ReadOnlySpan<byte> password, ulong passwordLength,
        ulong opsLimit, nuint memLimit);

    [LibraryImport(Library)]
    public static partial int crypto_pwhash_str_verify(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> password, ulong passwordLength);

    [LibraryImport(Library)]
    public static partial int crypto_pwhash_str_needs_rehash(ReadOnlySpan<byte> hash, ulong opsLimit, nuint memLimit);
}
