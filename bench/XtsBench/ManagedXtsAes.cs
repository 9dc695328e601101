using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;

namespace EdgeBlock.Bench.Xts;

/// <summary>How the managed XTS gets its AES-ECB.</summary>
public enum EcbCore
{
    /// <summary>Aes.EncryptEcb / DecryptEcb one-shots on spans.</summary>
    OneShot,

    /// <summary>A reused ECB ICryptoTransform per thread over a scratch array (keyed once).</summary>
    Transform,
}

/// <summary>
/// Candidate (b): XTS written here over .NET's AES-ECB (OpenSSL's AES-NI ECB underneath):
/// C_j = AES-K1(P_j ^ T_j) ^ T_j, T_0 = AES-K2(unit number), T_j = T_{j-1}·α. Kept in the
/// benchmark only, as the measured alternative to the OpenSSL XTS in XtsAes.
/// </summary>
public sealed class ManagedXtsAes : IDisposable
{
    private const int Block = 16;
    private const int Chunk = 4096;

    private readonly byte[] _key1;
    private readonly byte[] _key2;
    private readonly EcbCore _core;
    private readonly ThreadLocal<State> _state;

    public ManagedXtsAes(ReadOnlySpan<byte> key, EcbCore core)
    {
        _key1 = key[..32].ToArray();
        _key2 = key[32..].ToArray();
        _core = core;
        _state = new ThreadLocal<State>(() => new State(_key1, _key2), trackAllValues: true);
    }

    /// <summary>Per-thread AES objects: .NET does not promise an Aes instance is thread-safe.</summary>
    private sealed class State : IDisposable
    {
        public readonly Aes Data = Aes.Create();
        public readonly Aes Tweak = Aes.Create();
        public readonly ICryptoTransform DataEncryptor, DataDecryptor, TweakEncryptor;
        public readonly byte[] Scratch = new byte[Chunk];
        public readonly byte[] TweakScratch = new byte[Block];

        public State(byte[] key1, byte[] key2)
        {
            Data.Key = key1;
            Tweak.Key = key2;
            Data.Mode = Tweak.Mode = CipherMode.ECB;
            Data.Padding = Tweak.Padding = PaddingMode.None;
            DataEncryptor = Data.CreateEncryptor();
            DataDecryptor = Data.CreateDecryptor();
            TweakEncryptor = Tweak.CreateEncryptor();
        }

        public void Dispose()
        {
            DataEncryptor.Dispose();
            DataDecryptor.Dispose();
            TweakEncryptor.Dispose();
            Data.Dispose();
            Tweak.Dispose();
        }
    }

    public void Encrypt(ReadOnlySpan<byte> plain, Span<byte> cipher, ulong firstUnit, int unitSize = 4096) =>
        Transform(plain, cipher, firstUnit, unitSize, encrypt: true);

    public void Decrypt(ReadOnlySpan<byte> cipher, Span<byte> plain, ulong firstUnit, int unitSize = 4096) =>
        Transform(cipher, plain, firstUnit, unitSize, encrypt: false);

    private void Transform(ReadOnlySpan<byte> input, Span<byte> output, ulong firstUnit, int unitSize, bool encrypt)
    {
        State state = _state.Value!;
        Span<byte> tweaks = stackalloc byte[Chunk];
        Span<byte> t0 = stackalloc byte[Block];
        int units = input.Length / unitSize;
        for (int unit = 0; unit < units; unit++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(t0, firstUnit + (ulong)unit);
            BinaryPrimitives.WriteUInt64LittleEndian(t0[8..], 0);
            if (_core == EcbCore.OneShot)
            {
                state.Tweak.EncryptEcb(t0, t0, PaddingMode.None);
            }
            else
            {
                t0.CopyTo(state.TweakScratch);
                state.TweakEncryptor.TransformBlock(state.TweakScratch, 0, Block, state.TweakScratch, 0);
                state.TweakScratch.CopyTo(t0);
            }
            Vector128<ulong> t = Vector128.Create(BinaryPrimitives.ReadUInt64LittleEndian(t0), BinaryPrimitives.ReadUInt64LittleEndian(t0[8..]));
            for (int offset = unit * unitSize, end = offset + unitSize; offset < end; offset += Chunk)
            {
                int length = Math.Min(Chunk, end - offset);
                Span<byte> tw = tweaks[..length];
                t = Tweaks.Fill(t, tw);
                ReadOnlySpan<byte> source = input.Slice(offset, length);
                Span<byte> destination = output.Slice(offset, length);
                if (_core == EcbCore.OneShot)
                {
                    Tweaks.Xor(source, tw, destination);
                    if (encrypt)
                    {
                        state.Data.EncryptEcb(destination, destination, PaddingMode.None);
                    }
                    else
                    {
                        state.Data.DecryptEcb(destination, destination, PaddingMode.None);
                    }
                    Tweaks.Xor(destination, tw, destination);
                }
                else
                {
                    Span<byte> scratch = state.Scratch.AsSpan(0, length);
                    Tweaks.Xor(source, tw, scratch);
                    (encrypt ? state.DataEncryptor : state.DataDecryptor).TransformBlock(state.Scratch, 0, length, state.Scratch, 0);
                    Tweaks.Xor(scratch, tw, destination);
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (State state in _state.Values)
        {
            state.Dispose();
        }
        _state.Dispose();
        CryptographicOperations.ZeroMemory(_key1);
        CryptographicOperations.ZeroMemory(_key2);
    }
}

/// <summary>The tweak sequence and the XOR passes, vectorised.</summary>
internal static class Tweaks
{
    /// <summary>
    /// Writes T, T·α, T·α², ... into <paramref name="destination"/> (a multiple of 16 bytes) and
    /// returns the tweak that follows. α multiplies the 128-bit little-endian value: shift left
    /// one bit, and a bit carried out of bit 127 folds back as 0x87 (x^128 = x^7 + x^2 + x + 1).
    /// </summary>
    public static Vector128<ulong> Fill(Vector128<ulong> t, Span<byte> destination)
    {
        int count = destination.Length / 16;
        ref byte d = ref destination[0];
        int first = Math.Min(count, 8);
        for (int j = 0; j < first; j++)
        {
            t.StoreUnsafe(ref Unsafe.As<byte, ulong>(ref Unsafe.Add(ref d, 16 * j)));
            t = TimesAlpha(t);
        }
        if (count <= 8)
        {
            return t;
        }
        // T_j = T_{j-8}·α^8: two tweaks per Vector256 step, four independent chains.
        int j2 = 8;
        for (; j2 + 2 <= count; j2 += 2)
        {
            Vector256<ulong> previous = Vector256.LoadUnsafe(ref Unsafe.As<byte, ulong>(ref Unsafe.Add(ref d, 16 * (j2 - 8))));
            TimesAlpha8(previous).StoreUnsafe(ref Unsafe.As<byte, ulong>(ref Unsafe.Add(ref d, 16 * j2)));
        }
        for (; j2 < count; j2++)
        {
            Vector128<ulong> previous = Vector128.LoadUnsafe(ref Unsafe.As<byte, ulong>(ref Unsafe.Add(ref d, 16 * (j2 - 8))));
            TimesAlpha8(Vector256.Create(previous, previous)).GetLower().StoreUnsafe(ref Unsafe.As<byte, ulong>(ref Unsafe.Add(ref d, 16 * j2)));
        }
        Vector128<ulong> last = Vector128.LoadUnsafe(ref Unsafe.As<byte, ulong>(ref Unsafe.Add(ref d, 16 * (count - 1))));
        return TimesAlpha(last);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ulong> TimesAlpha(Vector128<ulong> t)
    {
        // Lane masks of the bits shifted out of each half (all ones where the top bit was set).
        Vector128<ulong> carries = Vector128.ShiftRightArithmetic(t.AsInt64(), 63).AsUInt64();
        // The low half's carry enters the high half as 1; the high half's wraps around as 0x87.
        Vector128<ulong> feedback = Vector128.Shuffle(carries, Vector128.Create(1UL, 0UL)) & Vector128.Create(0x87UL, 1UL);
        return (t << 1) ^ feedback;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> TimesAlpha8(Vector256<ulong> t)
    {
        Vector256<ulong> carried = Vector256.Shuffle(t >>> 56, Vector256.Create(1UL, 0UL, 3UL, 2UL));
        // In the low halves the high half's top byte c folds back as c·0x87 (carry-less).
        Vector256<ulong> folded = ((carried << 1) ^ (carried << 2) ^ (carried << 7)) & Vector256.Create(ulong.MaxValue, 0, ulong.MaxValue, 0);
        return (t << 8) ^ carried ^ folded;
    }

    public static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination)
    {
        ref byte ra = ref Unsafe.AsRef(in a[0]);
        ref byte rb = ref Unsafe.AsRef(in b[0]);
        ref byte rd = ref destination[0];
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 64 <= a.Length; i += 64)
            {
                (Vector512.LoadUnsafe(ref ra, (nuint)i) ^ Vector512.LoadUnsafe(ref rb, (nuint)i)).StoreUnsafe(ref rd, (nuint)i);
            }
        }
        for (; i + 32 <= a.Length; i += 32)
        {
            (Vector256.LoadUnsafe(ref ra, (nuint)i) ^ Vector256.LoadUnsafe(ref rb, (nuint)i)).StoreUnsafe(ref rd, (nuint)i);
        }
        for (; i < a.Length; i += 16)
        {
            (Vector128.LoadUnsafe(ref ra, (nuint)i) ^ Vector128.LoadUnsafe(ref rb, (nuint)i)).StoreUnsafe(ref rd, (nuint)i);
        }
    }
}
