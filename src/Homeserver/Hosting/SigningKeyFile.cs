using Matrix.Federation.Crypto;

namespace Matrix.Homeserver.Hosting;

/// <summary>The server's Ed25519 signing key on disk, in Synapse's format (<c>ed25519 &lt;version&gt; &lt;base64 seed&gt;</c>).</summary>
public static class SigningKeyFile
{
    public static Ed25519KeyPair LoadOrCreate(string path, ILogger logger)
    {
        if (File.Exists(path))
        {
            var parts = File.ReadAllText(path).Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || parts[0] != "ed25519" || !UnpaddedBase64.TryDecode(parts[2], out var seed) || seed.Length != LibSodium.SignSeedBytes)
                throw new InvalidOperationException($"signing key file '{path}' is not in the form 'ed25519 <version> <base64 seed>'");
            return Ed25519KeyPair.FromSeed(parts[1], seed);
        }

        var key = Ed25519KeyPair.Generate("a_" + Accounts.Secrets.NewSessionId()[..4]);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // Created owner-only from the start, so the seed is never readable by others, not even briefly.
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(new FileStream(path, options)))
            writer.WriteLine($"ed25519 {key.KeyId["ed25519:".Length..]} {UnpaddedBase64.Encode(key.Seed)}");
        logger.LogInformation("Generated signing key {KeyId} in {Path}", key.KeyId, path);
        return key;
    }
}
