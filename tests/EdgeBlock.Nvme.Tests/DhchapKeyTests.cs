using EdgeBlock.Nvme.Auth;

namespace EdgeBlock.Nvme.Tests;

/// <summary>The DHHC-1 secret representation and the NQN transform, against vectors from nvme-cli 2.3.</summary>
public sealed class DhchapKeyTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7d9e3c2a-5b1f-4c8e-9a6d-2f4b8c1e0a37";
    private static readonly byte[] Secret32 = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Secret48 = Enumerable.Range(0, 48).Select(i => (byte)i).ToArray();

    [Fact]
    public void Parse_NvmeCliUntransformedKey_YieldsItsSecretAndFormatsBack()
    {
        // nvme gen-dhchap-key --secret=000102..1f --hmac=0
        const string text = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        var key = DhchapKey.Parse(text);

        Assert.Null(key.Transform);
        Assert.Equal(32, key.Length);
        Assert.Equal(Secret32, key.TransformWith(HostNqn)); // no transform: the secret itself
        Assert.Equal(text, key.Format());
    }

    [Theory]
    // nvme gen-dhchap-key --secret=SECRET --hmac=1|2 --nqn=HostNqn prints the transformed secret.
    [InlineData(DhchapHash.Sha256, "DHHC-1:01:RdMBdnalBFezjF1LaFjyowjs9EZw+6PvLnBy2anDsarhFVbU:")]
    [InlineData(DhchapHash.Sha384, "DHHC-1:02:cAvsL34g+FRkq3V1yUIHxHsSDef9Gr/NLKcPwWul/LIW5FbdRxpjKqtVafyp0PN4SNPGAw==:")]
    public void TransformWith_NvmeCliVectors_MatchesGenDhchapKey(DhchapHash hash, string nvmeCliOutput)
    {
        var key = DhchapKey.FromSecret(hash == DhchapHash.Sha256 ? Secret32 : Secret48, hash);
        byte[] expected = Convert.FromBase64String(nvmeCliOutput.Split(':')[2])[..^4];

        Assert.Equal(expected, key.TransformWith(HostNqn));
    }

    [Theory]
    [InlineData("DHHC-2:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "starts with 'DHHC-1:'")]
    [InlineData("DHHC-1:07:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "transform '07'")]
    [InlineData("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:", "CRC does not match")]
    [InlineData("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX:", "decodes to 24 bytes")]
    [InlineData("DHHC-1:00:not*base64!:", "not valid base64")]
    [InlineData("DHHC-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "must be 64 bytes")]
    [InlineData("DHHC-1:00", "form is DHHC-1:XX:BASE64:")]
    public void TryParse_BadSecret_NamesTheProblem(string text, string problemPart)
    {
        Assert.False(DhchapKey.TryParse(text, out var key, out string problem));
        Assert.Null(key);
        Assert.Contains(problemPart, problem);
    }

    [Fact]
    public void ToString_NeverShowsTheSecret()
    {
        var key = DhchapKey.Parse("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:");
        Assert.DoesNotContain("AAEC", key.ToString());
    }

    [Theory]
    [InlineData(DhchapDhGroup.Ffdhe2048, 256)]
    [InlineData(DhchapDhGroup.Ffdhe8192, 1024)]
    public void FfdheGroup_TwoParties_AgreeOnTheSharedSecret(DhchapDhGroup id, int size)
    {
        var group = FfdheGroup.For(id)!;
        var (a, publicA) = group.GenerateKeyPair();
        var (b, publicB) = group.GenerateKeyPair();

        Assert.Equal(size, publicA.Length);
        Assert.True(group.TryComputeSharedSecret(a, publicB, out var s1));
        Assert.True(group.TryComputeSharedSecret(b, publicA, out var s2));
        Assert.Equal(s1, s2);
        Assert.Equal(size, s1.Length);
    }

    [Fact]
    public void FfdheGroup_PeerValueOneOrWrongLength_IsRefused()
    {
        var group = FfdheGroup.For(DhchapDhGroup.Ffdhe2048)!;
        var (x, _) = group.GenerateKeyPair();
        var one = new byte[256];
        one[^1] = 1;
        Assert.False(group.TryComputeSharedSecret(x, one, out _));
        Assert.False(group.TryComputeSharedSecret(x, new byte[255], out _));
    }
}
