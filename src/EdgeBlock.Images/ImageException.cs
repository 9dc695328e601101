namespace EdgeBlock.Images;

/// <summary>
/// An image refused or unreadable: the message names the file and the problem (a field, its value, why it is wrong),
/// so that a user can act on it. Every check of a hostile image ends here, never in an out-of-range read or an
/// allocation sized by the file's claims.
/// </summary>
public sealed class ImageException(string message, Exception? inner = null) : Exception(message, inner);
