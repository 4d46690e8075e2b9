//! The `Order` aggregate: a pure, synchronous decider.

use serde::{Deserialize, Serialize};
use tidemark::Aggregate;

use super::commands::{
    OrderCommand, MAX_CUSTOMER_CHARS, MAX_DELIVERY_CHARS, MAX_LINES, MAX_REASON_CHARS, MAX_REFERENCE_CHARS,
};
use super::currency::Currency;
use super::error::{require_text, OrderError};
use super::events::{
    Delivery, LineAdded, LineRemoved, OrderCancelled, OrderConfirmed, OrderEvent, OrderPaid, OrderPlaced, OrderShipped,
};
use super::line::{lines_total, Line};
use super::status::OrderStatus;

type Decision = Result<Vec<OrderEvent>, OrderError>;

/// An order, as rebuilt from its events. `Default` is the state before it is placed.
///
/// ```
/// use example_orders::domain::{Currency, Line, Order, OrderCommand, OrderPlaced, OrderConfirmed, OrderStatus};
/// use tidemark::AggregateTest;
///
/// let placed = OrderPlaced { customer: "ada".into(), lines: vec![Line::new("tea", 2, 450)], currency: Currency::EUR, delivery: None };
/// let order = AggregateTest::<Order>::given([placed.into()])
///     .when(OrderCommand::Confirm)
///     .then([OrderConfirmed {}.into()]);
/// assert_eq!((order.status(), order.total_minor()), (OrderStatus::Confirmed, 900));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    status: OrderStatus,
    customer: String,
    currency: Option<Currency>,
    lines: Vec<Line>,
    payment_id: Option<String>,
    tracking: Option<String>,
    cancel_reason: Option<String>,
    /// Where to deliver: personal data, `"[forgotten]"` once the customer was forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<Delivery>,
}

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(&self, command: &OrderCommand) -> Decision {
        match command {
            OrderCommand::Place { customer, lines, currency, delivery } => {
                self.place(customer, lines, *currency, delivery.as_ref())
            }
            OrderCommand::AddLine { line } => self.add_line(line),
            OrderCommand::RemoveLine { product } => self.remove_line(product),
            OrderCommand::Confirm => self.confirm(),
            OrderCommand::Pay { payment_id, amount_minor } => self.pay(payment_id, *amount_minor),
            OrderCommand::Ship { tracking } => self.ship(tracking),
            OrderCommand::Cancel { reason } => self.cancel(reason),
        }
    }

    fn evolve(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed(e) => {
                self.status = OrderStatus::Placed;
                self.customer.clone_from(&e.customer);
                self.currency = Some(e.currency);
                self.lines.clone_from(&e.lines);
                self.delivery.clone_from(&e.delivery);
            }
            OrderEvent::LineAdded(e) => self.lines.push(e.line.clone()),
            OrderEvent::LineRemoved(e) => self.lines.retain(|l| l.product != e.product),
            OrderEvent::Confirmed(_) => self.status = OrderStatus::Confirmed,
            OrderEvent::Paid(e) => {
                self.status = OrderStatus::Paid;
                self.payment_id = Some(e.payment_id.clone());
            }
            OrderEvent::Shipped(e) => {
                self.status = OrderStatus::Shipped;
                self.tracking = Some(e.tracking.clone());
            }
            OrderEvent::Cancelled(e) => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(e.reason.clone());
            }
        }
    }

    fn creates_stream(command: &OrderCommand) -> bool {
        matches!(command, OrderCommand::Place { .. })
    }
}

/// Deciding, one method per command.
impl Order {
    fn place(&self, customer: &str, lines: &[Line], currency: Currency, delivery: Option<&Delivery>) -> Decision {
        if self.status != OrderStatus::Unplaced {
            return Err(OrderError::AlreadyPlaced);
        }
        require_text("customer", customer, MAX_CUSTOMER_CHARS)?;
        if let Some(d) = delivery {
            require_text("delivery name", &d.name, MAX_DELIVERY_CHARS)?;
            require_text("delivery address", &d.address, MAX_DELIVERY_CHARS)?;
        }
        check_new_lines(lines)?;
        let delivery = delivery.cloned();
        Ok(vec![OrderPlaced { customer: customer.to_owned(), lines: lines.to_vec(), currency, delivery }.into()])
    }

    fn add_line(&self, line: &Line) -> Decision {
        self.lines_may_change()?;
        line.validate()?;
        if self.line(&line.product).is_some() {
            return Err(OrderError::DuplicateProduct { product: line.product.clone() });
        }
        if self.lines.len() >= MAX_LINES {
            return Err(OrderError::TooManyLines { max: MAX_LINES });
        }
        let total = lines_total(&self.lines).zip(line.total_minor()).and_then(|(a, b)| a.checked_add(b));
        total.ok_or(OrderError::TotalOverflow)?;
        Ok(vec![LineAdded { line: line.clone() }.into()])
    }

    fn remove_line(&self, product: &str) -> Decision {
        self.lines_may_change()?;
        if self.line(product).is_none() {
            return Err(OrderError::UnknownProduct { product: product.to_owned() });
        }
        if self.lines.len() == 1 {
            return Err(OrderError::LastLine);
        }
        Ok(vec![LineRemoved { product: product.to_owned() }.into()])
    }

    fn confirm(&self) -> Decision {
        match self.status {
            OrderStatus::Placed => Ok(vec![OrderConfirmed {}.into()]),
            OrderStatus::Unplaced => Err(OrderError::NotPlaced),
            status => Err(OrderError::NotConfirmable { status }),
        }
    }

    fn pay(&self, payment_id: &str, amount_minor: i64) -> Decision {
        require_text("payment_id", payment_id, MAX_REFERENCE_CHARS)?;
        match (self.payment_id.as_deref(), self.status) {
            // The same payment again (a retry, a redelivered webhook): already recorded.
            (Some(paid), _) if paid == payment_id => return Ok(Vec::new()),
            (Some(_), _) => return Err(OrderError::AlreadyPaid),
            (None, OrderStatus::Confirmed) => {}
            (None, OrderStatus::Unplaced) => return Err(OrderError::NotPlaced),
            (None, status) => return Err(OrderError::NotPayable { status }),
        }
        let expected_minor = self.total_minor();
        if amount_minor != expected_minor {
            return Err(OrderError::AmountMismatch { expected_minor, offered_minor: amount_minor });
        }
        Ok(vec![OrderPaid { payment_id: payment_id.to_owned(), amount_minor }.into()])
    }

    fn ship(&self, tracking: &str) -> Decision {
        require_text("tracking", tracking, MAX_REFERENCE_CHARS)?;
        match self.status {
            OrderStatus::Paid => Ok(vec![OrderShipped { tracking: tracking.to_owned() }.into()]),
            OrderStatus::Unplaced => Err(OrderError::NotPlaced),
            status => Err(OrderError::NotShippable { status }),
        }
    }

    fn cancel(&self, reason: &str) -> Decision {
        require_text("reason", reason, MAX_REASON_CHARS)?;
        match self.status {
            OrderStatus::Unplaced => Err(OrderError::NotPlaced),
            OrderStatus::Shipped => Err(OrderError::AlreadyShipped),
            OrderStatus::Cancelled => Err(OrderError::AlreadyCancelled),
            OrderStatus::Placed | OrderStatus::Confirmed | OrderStatus::Paid => {
                Ok(vec![OrderCancelled { reason: reason.to_owned() }.into()])
            }
        }
    }

    fn lines_may_change(&self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::Placed => Ok(()),
            OrderStatus::Unplaced => Err(OrderError::NotPlaced),
            status => Err(OrderError::NotModifiable { status }),
        }
    }
}

/// The lines of a new order: at least one, at most [`MAX_LINES`], each valid, one per
/// product, with a total that fits.
fn check_new_lines(lines: &[Line]) -> Result<(), OrderError> {
    if lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    if lines.len() > MAX_LINES {
        return Err(OrderError::TooManyLines { max: MAX_LINES });
    }
    for (i, line) in lines.iter().enumerate() {
        line.validate()?;
        if lines[..i].iter().any(|earlier| earlier.product == line.product) {
            return Err(OrderError::DuplicateProduct { product: line.product.clone() });
        }
    }
    lines_total(lines).map(drop).ok_or(OrderError::TotalOverflow)
}

/// Reading the state.
impl Order {
    /// Where the order is in its life cycle.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// Where to deliver, if given (`"[forgotten]"` in both fields once the customer was
    /// forgotten).
    pub fn delivery(&self) -> Option<&Delivery> {
        self.delivery.as_ref()
    }

    /// Who ordered; empty before the order is placed.
    pub fn customer(&self) -> &str {
        &self.customer
    }

    /// The currency of every price; `None` before the order is placed.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// The lines, in the order they were added.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The line for a product, if any.
    pub fn line(&self, product: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.product == product)
    }

    /// The order total in minor units. Saturates at `i64::MAX`, which deciding never
    /// lets an order reach.
    pub fn total_minor(&self) -> i64 {
        let line_total = |l: &Line| l.unit_price_minor.saturating_mul(i64::from(l.quantity));
        self.lines.iter().fold(0, |sum, l| sum.saturating_add(line_total(l)))
    }

    /// The id of the payment, once paid.
    pub fn payment_id(&self) -> Option<&str> {
        self.payment_id.as_deref()
    }

    /// The carrier's tracking number, once shipped.
    pub fn tracking(&self) -> Option<&str> {
        self.tracking.as_deref()
    }

    /// Why the order was cancelled, once cancelled.
    pub fn cancel_reason(&self) -> Option<&str> {
        self.cancel_reason.as_deref()
    }
}
