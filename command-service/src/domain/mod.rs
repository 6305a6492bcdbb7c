//! Commands and the rules they must satisfy. A value of a type here is valid by construction:
//! the `parse` functions are the only way to make one.

mod fields;
mod order;

pub use fields::{
    name_pattern, text_pattern, CancellationReason, CurrencyCode, Description, EmailAddress,
    IdempotencyKey, MinorUnits, OwnedKey, PersonName, Quantity, MAX_DESCRIPTION_CHARS,
    MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_REASON_CHARS, QUANTITY_RANGE, UNIT_PRICE_RANGE,
};
pub use order::{
    summaries_within_group, CancelOrder, CancelRejection, Customer, NewOrder, OrderRecord,
    OrderStatus, PlacedOrder, UnitPrice,
};

/// One rule a field of a command broke.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Every rule a command broke, so a client can fix all of them at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// Keeps the value, or records why `field` was rejected.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.0.push(FieldError { field, message }))
            .ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> &[FieldError] {
        &self.0
    }
}
