using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Tests;

public sealed class SecurityPrimitiveTests
{
    private static PasswordHasher Hasher(long ops = 1, long memKib = 64) => new(new HomeserverConfig
    {
        Auth = new AuthConfig { PasswordHashing = new PasswordHashingConfig { OpsLimit = ops, MemLimitKib = memKib } },
    });

    [Fact]
    public async Task Passwords_are_argon2id_hashes_that_verify_only_the_right_password()
    {
        var hasher = Hasher();
        var hash = await hasher.HashAsync("correct horse", CancellationToken.None);
        Assert.StartsWith("$argon2id$", hash);
        Assert.DoesNotContain("correct horse", hash);
        Assert.True(await hasher.VerifyAsync("correct horse", hash, CancellationToken.None));
        Assert.False(await hasher.VerifyAsync("correct horsE", hash, CancellationToken.None));
        Assert.NotEqual(hash, await hasher.HashAsync("correct horse", CancellationToken.None));
    }

    [Fact]
    public async Task A_changed_cost_asks_for_a_rehash()
    {
        var hash = await Hasher(1, 64).HashAsync("pw", CancellationToken.None);
        Assert.False(Hasher(1, 64).NeedsRehash(hash));
        Assert.True(Hasher(2, 128).NeedsRehash(hash));
    }

    [Fact]
    public void Tokens_carry_256_random_bits_and_only_their_hash_is_stored()
    {
        var a = Secrets.NewToken("mat_");
        var b = Secrets.NewToken("mat_");
        Assert.NotEqual(a, b);
        Assert.Equal(4 + 43, a.Length);
        Assert.Equal(64, Secrets.Hash(a).Length);
        Assert.Equal(Secrets.Hash(a), Secrets.Hash(a));
        Assert.NotEqual(Secrets.Hash(a), Secrets.Hash(b));
    }

    [Fact]
    public void A_token_hash_is_the_hex_SHA256_of_its_UTF8_however_long_the_token()
    {
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Secrets.Hash("abc"));
        Span<char> hex = stackalloc char[Secrets.HashLength];
        Secrets.Hash("abc", hex);
        Assert.Equal(Secrets.Hash("abc"), new string(hex));
        var longToken = string.Concat(Enumerable.Repeat("é-token-", 200));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(longToken))), Secrets.Hash(longToken));
    }

    [Fact]
    public void Rate_limiter_allows_the_burst_then_refuses_until_tokens_refill()
    {
        var clock = new ManualClock();
        var limiter = new RateLimiter(clock);
        var limit = new RateLimitConfig { PerSecond = 1, Burst = 2 };
        limiter.Check("a", "k", limit);
        limiter.Check("a", "k", limit);
        var refused = Assert.Throws<MatrixException>(() => limiter.Check("a", "k", limit));
        Assert.Equal(429, refused.Status);
        Assert.Equal("M_LIMIT_EXCEEDED", refused.Errcode);
        Assert.Equal(1000, refused.ToJson()["retry_after_ms"]!.GetValue<long>());
        limiter.Check("a", "other-key", limit);
        clock.Advance(TimeSpan.FromSeconds(1));
        limiter.Check("a", "k", limit);
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
