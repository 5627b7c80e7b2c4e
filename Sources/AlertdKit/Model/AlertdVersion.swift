public enum AlertdVersion { public static let string = "0.1.0" }
