import CAlertdShims
public enum P2 {}
